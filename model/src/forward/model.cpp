// Loading a model (every tensor the config implies checked up front) and the small queries on it.
// The forward itself is forward.cpp.
#include <cmath>
#include <filesystem>
#include <numeric>

#include "attnscope/error.hpp"
#include "attnscope/model.hpp"
#include "forward/gemm.hpp"
#include "forward/memory.hpp"
#include "forward/model_impl.hpp"
#include "forward/rope.hpp"

namespace attnscope {

using forward_detail::Role;

Model Model::load(const std::string& dir) {
  auto impl = std::make_shared<Impl>();
  impl->checkpoint = Checkpoint::open(dir);
  const Checkpoint& ck = impl->checkpoint;
  const ModelConfig& config = ck.config();
  auto layout =
      checkpoint_detail::weight_layout(config, [&](std::string_view name) { return ck.has(name); });
  // Config and tensors must agree before any compute: a disagreement found mid-forward would
  // have cost the user the layers before it.
  for (const checkpoint_detail::TensorSpec* spec : layout.all()) {
    if (!ck.has(spec->name)) {
      throw Error("tensor '" + spec->name + "' is missing (config.json implies " +
                  shape_str(spec->shape) + ")");
    }
    const Shape stored = ck.shape(spec->name);
    if (stored != spec->shape) {
      throw Error("tensor '" + spec->name + "' has shape " + shape_str(stored) +
                  "; config.json implies " + shape_str(spec->shape));
    }
    ck.stored_type(spec->name);  // throws for a dtype we do not widen
  }
  impl->weights = std::make_unique<forward_detail::WeightStore>(ck, std::move(layout));
  if (config.family != ModelFamily::gpt2)
    impl->inv_freq = forward_detail::rope_inv_freq_fp32(config);
  const std::filesystem::path tokenizer = std::filesystem::path(dir) / "tokenizer.json";
  std::error_code ec;
  if (std::filesystem::exists(tokenizer, ec)) {
    impl->tokenizer = Tokenizer::from_file(tokenizer.string());
  }
  Model m;
  m.impl_ = std::move(impl);
  return m;
}

const ModelConfig& Model::config() const {
  return impl_->checkpoint.config();
}

const Checkpoint& Model::checkpoint() const {
  return impl_->checkpoint;
}

bool Model::has_tokenizer() const {
  return impl_->tokenizer.has_value();
}

const Tokenizer& Model::tokenizer() const {
  if (!impl_->tokenizer) throw Error(impl_->checkpoint.dir() + " has no tokenizer.json");
  return *impl_->tokenizer;
}

void Model::check_ids(std::span<const int32_t> ids) const {
  const ModelConfig& c = config();
  if (ids.empty()) throw Error("the text has no tokens; a forward needs at least one");
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= c.vocab_size) {
      throw Error("token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                  " is outside the model's vocabulary [0, " + std::to_string(c.vocab_size) + ")");
    }
  }
  if (c.family == ModelFamily::gpt2 && static_cast<int64_t>(ids.size()) > c.max_positions) {
    throw Error("the text has " + std::to_string(ids.size()) + " tokens; gpt2 takes at most " +
                std::to_string(c.max_positions) +
                " (n_positions: its learned positions end there)");
  }
}

AttentionProblem Model::attention_problem(int64_t tokens) const {
  if (tokens < 1) {
    throw Error("an attention problem needs at least one token (got " + std::to_string(tokens) +
                ")");
  }
  return config().attention_problem(tokens);
}

int64_t Model::forward_bytes(int64_t tokens, const ForwardOptions& options) const {
  if (tokens < 1)
    throw Error("a forward needs at least one token (got " + std::to_string(tokens) + ")");
  return forward_detail::forward_memory(config(), impl_->weights->forward_weight_bytes(), tokens,
                                        options)
      .total();
}

Tensor Model::lm_head(const Tensor& hidden, int64_t row0, int64_t row1) const {
  const ModelConfig& c = config();
  if (hidden.rank() != 2 || hidden.dim(1) != c.hidden_size) {
    throw Error("lm_head takes hidden states [L, " + std::to_string(c.hidden_size) + "]; got " +
                shape_str(hidden.shape()));
  }
  if (row0 < 0 || row1 < row0 || row1 > hidden.dim(0)) {
    throw Error("lm_head rows [" + std::to_string(row0) + ", " + std::to_string(row1) +
                ") are outside the " + std::to_string(hidden.dim(0)) + " hidden rows");
  }
  auto session = impl_->weights->session();
  Tensor out({row1 - row0, c.vocab_size});
  forward_detail::logits_rows(hidden.data(), hidden.dim(0), c.hidden_size,
                              session.globals()[Role::lm_head], c.vocab_size, row0, row1,
                              out.data());
  return out;
}

double ForwardResult::perplexity() const {
  if (nll.empty()) return std::nan("");
  const double sum = std::accumulate(nll.begin(), nll.end(), 0.0);
  return std::exp(sum / static_cast<double>(nll.size()));
}

}  // namespace attnscope
