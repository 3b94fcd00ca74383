// httplib::Server with Seek's own connection loop. Debian's cpp-httplib 0.11.4 is used as it
// is (no patches); what it gets wrong for a server facing careless or hostile clients is fixed
// around it, through its virtual per-connection hook and its per-request setup callback:
//   - one buffered stream per connection, so requests pipelined behind another are answered
//     (the library's loop polls the socket and misses requests already in its buffer);
//   - a chunked body is cut off past the body limit (the library bounds Content-Length only);
//   - Content-Length must be digits within the limit and Transfer-Encoding exactly "chunked",
//     answered at once (the library waits for a body it will never get); a body-less request
//     without a length has an empty body instead of one read until the client closes;
//   - Range is honoured only where `honours_range` says so, and never with several ranges;
//   - memory of a large request is handed back to the system once it is answered.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

#include "serve/http.h"

namespace seek::serve {

// The request being served on the calling worker thread (route and error handlers run there).
struct HttpConnection {
  int reject_status = 0;  // 400 / 413 / 501: answer this before reading the body
  std::string reject_message;
  bool body_over_limit = false;  // the body was cut off at the limit: answer 413
  bool close = false;            // close the connection after this response
};

class HttpServer : public httplib::Server {
 public:
  // Bodies larger than this many bytes are refused (413).
  size_t max_body = 8u << 20;
  // Requests whose Range header may be applied (a single range only); others ignore Range.
  std::function<bool(const httplib::Request&)> honours_range;

  // Null outside a request handler.
  static HttpConnection* current();

 private:
  bool process_and_close_socket(socket_t sock) override;
  void setup(httplib::Request& req, HttpConnection& conn) const;
};

}  // namespace seek::serve
