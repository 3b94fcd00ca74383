// Saved training checkpoints hold every tensor of the release, the MTP module's own copies of the
// shared embedding and head included (vLLM and SGLang load them), equal to the main tensors; they
// load back (Params::load, the inference loader), and so do older checkpoints without the copies.
#include "train/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "core/io.h"
#include "core/safetensors.h"
#include "core/safetensors_writer.h"
#include "model/weights.h"
#include "model/test_configs.h"

namespace seek::train {
namespace {

namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("seek_checkpoint_test_" + std::to_string(::getpid())))
               .string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string save(const model::Params& p) {
    TrainState st;
    st.m.assign(p.size(), 0.0f);
    st.v.assign(p.size(), 0.0f);
    save_checkpoint(dir_, "step-1", p, st, "", {}, 0);
    return dir_ + "/step-1";
  }
  std::string dir_;
};

bool same_floats(const Tensor& t, const float* want, int64_t n) {
  return t.dtype == DType::F32 && t.numel() == n &&
         std::memcmp(t.data, want, size_t(n) * 4) == 0;
}

TEST_F(CheckpointTest, HoldsTheMtpCopiesOfEmbeddingAndHead) {
  const model::ModelConfig c = model::test::tiny_v3();
  ASSERT_EQ(c.num_nextn_predict_layers, 1);
  const model::Params p = model::Params::init(c, 0.2, 9);
  const std::string ck = save(p);
  TensorStore s = TensorStore::open(ck);
  const std::string mtp = "model.layers." + std::to_string(c.num_hidden_layers) + ".";
  for (const auto& [copy, main] :
       {std::pair{mtp + "embed_tokens.weight", "model.embed_tokens.weight"},
        std::pair{mtp + "shared_head.head.weight", "lm_head.weight"}}) {
    const Tensor* t = s.find(copy);
    ASSERT_NE(t, nullptr) << copy;
    const model::ParamInfo* i = p.find(main);
    ASSERT_NE(i, nullptr);
    EXPECT_EQ(t->shape, i->shape);
    EXPECT_TRUE(same_floats(*t, p.data().data() + i->offset, i->numel)) << copy;
  }
  // Every parameter is there with its values; the copies are the only other tensors.
  for (const model::ParamInfo& i : p.infos())
    EXPECT_TRUE(same_floats(s.get(i.name), p.data().data() + i.offset, i.numel)) << i.name;
  EXPECT_EQ(s.tensors().size(), p.infos().size() + 2);

  // It loads back: for training (the copies are not parameters) and for inference (the copies
  // bound as the release's are).
  const model::Params q = model::Params::load(c, ck);
  EXPECT_EQ(q.data(), p.data());
  model::ModelWeights w = model::bind_weights(c, s);
  ASSERT_EQ(w.mtp.size(), 1u);
  EXPECT_EQ(w.mtp[0].embed_tokens.data, s.get(mtp + "embed_tokens.weight").data);
  EXPECT_EQ(w.mtp[0].shared_head_head.data, s.get(mtp + "shared_head.head.weight").data);
}

TEST_F(CheckpointTest, TiedEmbeddingsCopyTheEmbedding) {
  model::ModelConfig c = model::test::tiny_v3();
  c.tie_word_embeddings = true;
  const model::Params p = model::Params::init(c, 0.2, 4);
  EXPECT_EQ(p.find("lm_head.weight"), nullptr);
  TensorStore s = TensorStore::open(save(p));
  const model::ParamInfo* e = p.find("model.embed_tokens.weight");
  const std::string head = "model.layers." + std::to_string(c.num_hidden_layers) +
                           ".shared_head.head.weight";
  EXPECT_TRUE(same_floats(s.get(head), p.data().data() + e->offset, e->numel));
  EXPECT_EQ(s.find("lm_head.weight"), nullptr);
}

// A checkpoint written before the copies were: only the parameters.
TEST_F(CheckpointTest, OlderCheckpointsWithoutTheCopiesStillLoad) {
  const model::ModelConfig c = model::test::tiny_v3();
  const model::Params p = model::Params::init(c, 0.2, 5);
  const std::string old = dir_ + "/old";
  fs::create_directories(old);
  write_file_atomic(old + "/config.json", c.to_json().dump());
  SafetensorsWriter w;
  for (const model::ParamInfo& i : p.infos())
    w.add(i.name, DType::F32, i.shape, p.data().data() + i.offset, size_t(i.numel) * 4);
  w.write(old + "/model.safetensors");
  const model::Params q = model::Params::load(c, old);
  EXPECT_EQ(q.data(), p.data());
  TensorStore s = TensorStore::open(old);
  model::ModelWeights mw = model::bind_weights(c, s);
  EXPECT_EQ(mw.mtp[0].embed_tokens.data, mw.embed_tokens.data);
  EXPECT_EQ(mw.mtp[0].shared_head_head.data, mw.lm_head.data);
}

}  // namespace
}  // namespace seek::train
