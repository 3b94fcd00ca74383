#include "serve/http_server.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

namespace seek::serve {

namespace {

thread_local HttpConnection* t_current = nullptr;

using Clock = std::chrono::steady_clock;

// poll() for `events` up to `ms`; retried on EINTR.
bool wait_for(int sock, short events, int ms) {
  pollfd p{sock, events, 0};
  for (;;) {
    const int r = ::poll(&p, 1, ms);
    if (r > 0) return (p.revents & events) != 0 || (p.revents & (POLLHUP | POLLERR)) == 0;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

int to_ms(time_t sec, time_t usec) { return int(sec * 1000 + usec / 1000); }

void address(const sockaddr_storage& a, std::string& ip, int& port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
    inet_ntop(AF_INET, &v4.sin_addr, buf, sizeof buf);
    port = ntohs(v4.sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
    inet_ntop(AF_INET6, &v6.sin6_addr, buf, sizeof buf);
    port = ntohs(v6.sin6_port);
  }
  ip = buf;
}

// One connection's bytes. Reads are buffered across requests (a pipelined request may already
// be in the buffer when the previous answer is written); body bytes past `body_limit` fail the
// read, which the library turns into an error response.
class ConnStream final : public httplib::Stream {
 public:
  ConnStream(int sock, int read_ms, int write_ms) : sock_(sock), read_ms_(read_ms), write_ms_(write_ms) {}

  bool is_readable() const override { return off_ < len_ || wait_for(sock_, POLLIN, read_ms_); }
  bool is_writable() const override { return wait_for(sock_, POLLOUT, write_ms_); }

  ssize_t read(char* ptr, size_t size) override {
    if (over_limit_) return -1;
    ssize_t n = 0;
    if (off_ < len_) {
      n = ssize_t(std::min(size, len_ - off_));
      std::memcpy(ptr, buf_ + off_, size_t(n));
      off_ += size_t(n);
    } else {
      if (!wait_for(sock_, POLLIN, read_ms_)) return -1;
      if (size >= sizeof buf_) {
        n = recv_some(ptr, size);
      } else {
        const ssize_t got = recv_some(buf_, sizeof buf_);
        if (got <= 0) return got;
        off_ = 0;
        len_ = size_t(got);
        n = ssize_t(std::min(size, len_));
        std::memcpy(ptr, buf_, size_t(n));
        off_ = size_t(n);
      }
    }
    if (n > 0) {
      request_bytes_ += size_t(n);
      if (in_body_ && (body_bytes_ += size_t(n)) > body_limit_) {
        over_limit_ = true;
        if (t_current) t_current->body_over_limit = true;
        return -1;
      }
    }
    return n;
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    for (;;) {
      const ssize_t n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
      if (n >= 0 || errno != EINTR) return n;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    if (getpeername(sock_, reinterpret_cast<sockaddr*>(&a), &len) == 0) address(a, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    if (getsockname(sock_, reinterpret_cast<sockaddr*>(&a), &len) == 0) address(a, ip, port);
  }
  socket_t socket() const override { return sock_; }

  // Waits for the first byte of the next request (buffered or arriving) for up to `idle_ms`,
  // giving up early once `running` turns false.
  bool next_request(int idle_ms, const std::function<bool()>& running) {
    request_bytes_ = body_bytes_ = 0;
    in_body_ = over_limit_ = false;
    if (off_ < len_) return true;
    const auto end = Clock::now() + std::chrono::milliseconds(idle_ms);
    while (running()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
      if (left <= 0) return false;
      if (wait_for(sock_, POLLIN, int(std::min<int64_t>(left, 100)))) return true;
    }
    return false;
  }

  void start_body(size_t limit) {
    in_body_ = true;
    body_limit_ = limit;
  }
  bool over_limit() const { return over_limit_; }
  size_t request_bytes() const { return request_bytes_; }

 private:
  ssize_t recv_some(char* p, size_t n) {
    for (;;) {
      const ssize_t r = ::recv(sock_, p, n, 0);
      if (r >= 0 || errno != EINTR) return r;
    }
  }

  int sock_, read_ms_, write_ms_;
  char buf_[4096];
  size_t off_ = 0, len_ = 0;
  bool in_body_ = false, over_limit_ = false;
  size_t body_limit_ = 0, body_bytes_ = 0, request_bytes_ = 0;
};

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 19 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

ConnStream* t_stream = nullptr;

}  // namespace

HttpConnection* HttpServer::current() { return t_current; }

void HttpServer::setup(httplib::Request& req, HttpConnection& conn) const {
  auto reject = [&](int status, std::string msg) {
    conn.reject_status = status;
    conn.reject_message = std::move(msg);
    conn.close = true;  // the body stays unread: the connection cannot carry another request
    req.set_header("Connection", "close");
  };
  const size_t n_len = req.get_header_value_count("Content-Length");
  const bool chunked_header = req.has_header("Transfer-Encoding");
  std::string len;
  for (size_t i = 0; i < n_len; ++i) {
    const std::string v = req.get_header_value("Content-Length", i);
    if (!all_digits(v) || (i > 0 && v != len)) {
      reject(400, fmt::format("invalid Content-Length: \"{}\"", v.substr(0, 32)));
      return;
    }
    len = v;
  }
  if (chunked_header) {
    if (n_len > 0) return reject(400, "a request may not have both Content-Length and Transfer-Encoding");
    if (req.get_header_value_count("Transfer-Encoding") != 1 ||
        !iequals(req.get_header_value("Transfer-Encoding"), "chunked"))
      return reject(501, "only Transfer-Encoding: chunked is supported");
  }
  if (n_len > 0 && std::stoull(len) > max_body)
    return reject(413, fmt::format("the request body exceeds {} bytes", max_body));
  if (n_len == 0 && !chunked_header && (req.method == "POST" || req.method == "PUT" || req.method == "PATCH"))
    req.set_header("Content-Length", "0");  // no length, no body (RFC 9112 6.3), not "read to EOF"
  // Chunk framing takes a few bytes per chunk; the body itself is checked exactly afterwards.
  if (t_stream) t_stream->start_body(max_body * 2 + 65536);
  if (req.ranges.size() > 1 || !honours_range || !honours_range(req)) req.ranges.clear();
}

bool HttpServer::process_and_close_socket(socket_t sock) {
  ConnStream strm(sock, to_ms(read_timeout_sec_, read_timeout_usec_),
                  to_ms(write_timeout_sec_, write_timeout_usec_));
  HttpConnection conn;
  t_current = &conn;
  t_stream = &strm;
  bool ret = false, drain = false;
  for (size_t count = keep_alive_max_count_; count > 0; --count) {
    if (!strm.next_request(int(keep_alive_timeout_sec_ * 1000), [this] { return is_running(); })) break;
    conn = HttpConnection();
    bool closed = false;
    ret = process_request(strm, count == 1, closed, [&](httplib::Request& req) { setup(req, conn); });
    // A large body is freed by now; give its pages back (glibc keeps them per arena).
    if (strm.request_bytes() > (size_t(1) << 20)) malloc_trim(0);
    drain = conn.close || strm.over_limit();
    if (!ret || closed || drain) break;
  }
  t_current = nullptr;
  t_stream = nullptr;
  if (drain) {
    // Unread request bytes make close() send a reset, which can destroy the answer still in
    // flight: say we are done, then read what the client still sends for a moment.
    ::shutdown(sock, SHUT_WR);
    char sink[16384];
    const auto end = Clock::now() + std::chrono::seconds(1);
    size_t total = 0;
    while (Clock::now() < end && total < (size_t(64) << 20) && wait_for(sock, POLLIN, 100)) {
      const ssize_t n = ::recv(sock, sink, sizeof sink, 0);
      if (n <= 0) break;
      total += size_t(n);
    }
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ret;
}

}  // namespace seek::serve
