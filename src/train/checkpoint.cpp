#include "train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/io.h"
#include "core/safetensors_writer.h"
#include "model/tensors.h"
#include "kernels/fp8.h"

namespace seek::train {

namespace fs = std::filesystem;

namespace {

constexpr char kStateMagic[8] = {'S', 'E', 'E', 'K', 'T', 'S', 'T', '1'};
// Version 2 appends the float32 master weights (n floats) after the moments.
constexpr char kStateMagic2[8] = {'S', 'E', 'E', 'K', 'T', 'S', 'T', '2'};

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

std::string encode_state(const TrainState& s) {
  std::string out(s.master.empty() ? kStateMagic : kStateMagic2, 8);
  auto put = [&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
  const uint64_t n = s.m.size();
  put(&s.step, 8);
  put(&s.tokens, 8);
  put(&s.data.epoch, 8);
  put(&s.data.index, 8);
  put(&n, 8);
  put(s.m.data(), n * 4);
  put(s.v.data(), n * 4);
  if (!s.master.empty()) put(s.master.data(), n * 4);
  return out;
}

void add_f32(SafetensorsWriter& w, const std::string& name, const std::vector<int64_t>& shape,
             const float* src, int64_t n) {
  w.add_lazy(name, DType::F32, shape,
             [src, n](uint8_t* dst) { std::memcpy(dst, src, size_t(n) * 4); });
}

void add_bf16(SafetensorsWriter& w, const std::string& name, const std::vector<int64_t>& shape,
              const float* src, int64_t n) {
  w.add_lazy(name, DType::BF16, shape, [src, n](uint8_t* dst) {
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t b = f32_to_bf16(src[i]);
      std::memcpy(dst + 2 * i, &b, 2);
    }
  });
}

// The release's quantizer (kernels/fp8.h), so a saved FP8 checkpoint is what DeepSeek's
// own conversion of these weights would be. (add() copies the bytes.)
void add_fp8(SafetensorsWriter& w, const std::string& name, const std::vector<int64_t>& shape,
             const float* src) {
  const int64_t rows = shape[0], cols = shape[1], sr = (rows + 127) / 128, sc = (cols + 127) / 128;
  std::vector<uint8_t> codes(size_t(rows * cols));
  std::vector<float> scales(size_t(sr * sc));
  kernels::quantize_fp8_blocks(src, rows, cols, codes.data(), scales.data());
  w.add(name, DType::F8_E4M3, shape, codes.data(), codes.size());
  w.add(name + "_scale_inv", DType::F32, {sr, sc}, scales.data(), scales.size() * 4);
}

}  // namespace

bool parse_save_dtype(const std::string& s, SaveDType* out) {
  if (s == "f32") *out = SaveDType::F32;
  else if (s == "bf16") *out = SaveDType::BF16;
  else if (s == "fp8") *out = SaveDType::FP8;
  else return false;
  return true;
}

const char* save_dtype_name(SaveDType d) {
  return d == SaveDType::FP8 ? "fp8" : d == SaveDType::BF16 ? "bf16" : "f32";
}

SaveDType model_save_dtype(const model::ModelConfig& mc) {
  return mc.quantization_config ? SaveDType::FP8
         : mc.torch_dtype == "float32" ? SaveDType::F32
                                       : SaveDType::BF16;
}

namespace {
std::function<void(const std::string&, const char*)> g_save_hook;
}  // namespace

void set_save_hook(std::function<void(const std::string& name, const char* stage)> hook) {
  g_save_hook = std::move(hook);
}

void save_checkpoint(const std::string& out, const std::string& name, const model::Params& p,
                     const TrainState& st, const std::string& tokenizer_dir,
                     const std::vector<std::pair<std::string, std::string>>& extra, int keep,
                     SaveDType dtype, const std::vector<ExtraTensor>& extra_tensors) {
  fs::create_directories(out);
  const std::string tmp = out + "/.tmp-" + name + "-" + std::to_string(::getpid());
  const std::string final_dir = out + "/" + name;
  std::error_code ec;
  fs::remove_all(tmp, ec);
  try {
    fs::create_directories(tmp);
    model::ModelConfig mc = p.config();
    if (dtype == SaveDType::FP8)
      mc.quantization_config = model::QuantizationConfig{"fp8", "e4m3", "dynamic", 128, 128};
    else
      mc.quantization_config.reset();
    nlohmann::json cfg = mc.to_json();
    cfg["torch_dtype"] = dtype == SaveDType::F32 ? "float32" : "bfloat16";
    write_file_atomic(tmp + "/config.json", cfg.dump(2) + "\n");
    SafetensorsWriter w;
    // Every tensor of the release, the MTP modules' copies of the shared embedding and head
    // included (vLLM and SGLang load them): in training they are the main tensors, so a copy is
    // written from its main tensor's values.
    // Params holds the other tensors in this order.
    size_t k = 0;
    for (const model::TensorSpec& t :
         model::model_tensors(p.config(), model::TensorOrder::Training)) {
      const model::ParamInfo* i = t.tied_to.empty() ? &p.infos().at(k++) : p.find(t.tied_to);
      if (!i || i->name != (t.tied_to.empty() ? t.name : t.tied_to))
        fail("parameter {} does not exist", t.name);
      const float* src = p.data().data() + i->offset;
      if (dtype == SaveDType::FP8 && t.fp8)
        add_fp8(w, t.name, t.shape, src);
      else if (dtype == SaveDType::F32 || t.role == model::TensorRole::RouterBias)
        add_f32(w, t.name, t.shape, src, i->numel);
      else
        add_bf16(w, t.name, t.shape, src, i->numel);
    }
    for (const ExtraTensor& t : extra_tensors) {
      int64_t n = 1;
      for (int64_t d : t.shape) n *= d;
      add_f32(w, t.name, t.shape, t.data, n);
    }
    w.write(tmp + "/model.safetensors");
    if (g_save_hook) g_save_hook(name, "weights");
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
      if (file_exists(tokenizer_dir + "/" + f)) write_file_atomic(tmp + "/" + f, read_file(tokenizer_dir + "/" + f));
    for (const auto& [fname, text] : extra) write_file_atomic(tmp + "/" + fname, text);
    write_file_atomic(tmp + "/training_state.bin", encode_state(st));
    fsync_dir(tmp);
    // Swap in: an existing checkpoint of the same name is moved aside first (only `latest`'s
    // target matters for resume, and it is never this name while we replace it).
    if (fs::exists(final_dir)) fs::remove_all(final_dir);
    fs::rename(tmp, final_dir);
    fsync_dir(out);
    const std::string link_tmp = out + "/.latest-" + std::to_string(::getpid());
    fs::remove(link_tmp, ec);
    fs::create_directory_symlink(name, link_tmp);
    fs::rename(link_tmp, out + "/latest");
    fsync_dir(out);
  } catch (const std::exception& e) {
    fs::remove_all(tmp, ec);
    fail("checkpoint {} was not saved (earlier checkpoints are intact): {}", final_dir, e.what());
  }
  if (keep > 0) {
    std::vector<std::string> steps;
    for (const auto& e : fs::directory_iterator(out))
      if (e.is_directory() && !e.is_symlink() && e.path().filename().string().rfind("step-", 0) == 0)
        steps.push_back(e.path().filename().string());
    std::sort(steps.begin(), steps.end());
    for (size_t i = 0; i + size_t(keep) < steps.size(); ++i)
      if (steps[i] != name) fs::remove_all(out + "/" + steps[i], ec);
  }
}

TrainState load_train_state(const std::string& dir, size_t n_params) {
  const std::string path = dir + "/training_state.bin";
  const std::string b = read_file(path);
  TrainState s;
  uint64_t n = 0;
  if (b.size() < 48) fail("{}: not a Seek training state", path);
  const bool v2 = std::memcmp(b.data(), kStateMagic2, 8) == 0;
  if (!v2 && std::memcmp(b.data(), kStateMagic, 8) != 0) fail("{}: not a Seek training state", path);
  std::memcpy(&s.step, b.data() + 8, 8);
  std::memcpy(&s.tokens, b.data() + 16, 8);
  std::memcpy(&s.data.epoch, b.data() + 24, 8);
  std::memcpy(&s.data.index, b.data() + 32, 8);
  std::memcpy(&n, b.data() + 40, 8);
  if (n != n_params) fail("{}: optimizer state for {} parameters, the model has {}", path, n, n_params);
  const size_t want = 48 + (v2 ? 12 : 8) * n;
  if (b.size() != want) fail("{}: truncated ({} bytes, expected {})", path, b.size(), want);
  s.m.resize(n);
  s.v.resize(n);
  std::memcpy(s.m.data(), b.data() + 48, n * 4);
  std::memcpy(s.v.data(), b.data() + 48 + n * 4, n * 4);
  if (v2) {
    s.master.resize(n);
    std::memcpy(s.master.data(), b.data() + 48 + n * 8, n * 4);
  }
  return s;
}

}  // namespace seek::train
