// A checkpoint folder: config.json plus one safetensors file or an indexed shard set, all mapped.
// Opening reads headers only; tensors are widened when a caller asks for them.
#include "attnscope/checkpoint.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "attnscope/error.hpp"
#include "checkpoint/layout.hpp"
#include "checkpoint/shard.hpp"

namespace attnscope {

using checkpoint_detail::open_shard;
using checkpoint_detail::Shard;
using checkpoint_detail::StoredTensor;
using nlohmann::json;
namespace fs = std::filesystem;

struct Checkpoint::Impl {
  std::string dir;
  ModelConfig config;
  std::vector<Shard> shards;
  std::map<std::string, const StoredTensor*, std::less<>> tensors;
  std::map<const StoredTensor*, const Shard*> shard_of;

  const StoredTensor& at(std::string_view name) const {
    const auto it = tensors.find(name);
    if (it == tensors.end()) {
      throw Error("tensor '" + std::string(name) + "' is not in the checkpoint " + dir);
    }
    return *it->second;
  }
  // The tensor, refusing dtypes we do not widen.
  const StoredTensor& widenable(std::string_view name) const {
    const StoredTensor& t = at(name);
    if (!t.type) {
      throw Error(shard_of.at(&t)->path + ": tensor '" + t.name + "' has dtype " + t.dtype +
                  ", which is not supported (supported: F32, F16, BF16)");
    }
    return t;
  }
};

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error(path + ": cannot read the file");
  return text.str();
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// weight_map: tensor name -> shard file name. Shard names must be plain file names in DIR.
std::map<std::string, std::vector<std::string>> read_index(
    const std::string& dir, const std::string& path, std::map<std::string, std::string>& by_name) {
  json root;
  try {
    root = json::parse(read_file(path));
  } catch (const json::exception& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")");
  }
  if (!root.is_object() || !root.contains("weight_map") || !root["weight_map"].is_object()) {
    throw Error(path + ": has no 'weight_map' object");
  }
  std::map<std::string, std::vector<std::string>> tensors_of_shard;
  for (const auto& [name, file] : root["weight_map"].items()) {
    if (!file.is_string()) {
      throw Error(path + ": weight_map entry for tensor '" + name + "' is not a file name");
    }
    const std::string shard = file.get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos ||
        shard.find('\\') != std::string::npos || shard == "." || shard == "..") {
      throw Error(path + ": weight_map names shard '" + shard + "' for tensor '" + name +
                  "'; shards must be files in " + dir);
    }
    by_name[name] = shard;
    tensors_of_shard[shard].push_back(name);
  }
  if (tensors_of_shard.empty()) throw Error(path + ": weight_map is empty");
  for (const auto& [shard, names] : tensors_of_shard) {
    if (!is_file(fs::path(dir) / shard)) {
      throw Error(path + " names shard '" + shard + "' (holding tensor '" + names.front() +
                  "'), which does not exist in " + dir);
    }
  }
  return tensors_of_shard;
}

std::string shape_text(const Shape& s) {
  return shape_str(s);
}

}  // namespace

Checkpoint Checkpoint::open(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir + " is not a directory");
  const fs::path root(dir);
  const fs::path config_path = root / "config.json";
  if (!is_file(config_path)) throw Error(dir + " has no config.json");

  auto impl = std::make_shared<Impl>();
  impl->dir = dir;
  impl->config = ModelConfig::from_json(read_file(config_path.string()), config_path.string());

  const fs::path index_path = root / "model.safetensors.index.json";
  if (is_file(index_path)) {
    std::map<std::string, std::string> shard_by_name;
    const auto tensors_of_shard = read_index(dir, index_path.string(), shard_by_name);
    impl->shards.reserve(tensors_of_shard.size());
    for (const auto& [file, names] : tensors_of_shard) {
      impl->shards.push_back(open_shard((root / file).string()));
    }
    for (const Shard& shard : impl->shards) {
      const std::string file = fs::path(shard.path).filename().string();
      for (const StoredTensor& t : shard.tensors) {
        const auto it = shard_by_name.find(t.name);
        // The index decides which shard a tensor comes from; unlisted ones are still usable.
        if (it != shard_by_name.end() && it->second != file) continue;
        if (impl->tensors.emplace(t.name, &t).second) impl->shard_of[&t] = &shard;
      }
    }
    for (const auto& [name, file] : shard_by_name) {
      if (!impl->tensors.count(name)) {
        throw Error(index_path.string() + " says tensor '" + name + "' is in shard '" + file +
                    "', but that file does not hold it");
      }
    }
  } else if (is_file(root / "model.safetensors")) {
    impl->shards.push_back(open_shard((root / "model.safetensors").string()));
    for (const StoredTensor& t : impl->shards.front().tensors) {
      impl->tensors.emplace(t.name, &t);
      impl->shard_of[&t] = &impl->shards.front();
    }
  } else {
    const bool bin = is_file(root / "pytorch_model.bin");
    throw Error(
        dir + " has no model.safetensors or model.safetensors.index.json" +
        std::string(bin ? " (pytorch_model.bin is not read; convert it to safetensors)" : ""));
  }

  // Tensors the config implies must be in a dtype we widen; extra ones (GPT-2's BOOL mask
  // buffers, say) may be anything since they are never read.
  const auto layout = checkpoint_detail::weight_layout(
      impl->config, [&](std::string_view n) { return impl->tensors.count(n) != 0; });
  for (const checkpoint_detail::TensorSpec* spec : layout.all()) {
    if (impl->tensors.count(spec->name)) impl->widenable(spec->name);
  }
  for (const Shard& shard : impl->shards) checkpoint_detail::check_no_overlap(shard);

  Checkpoint c;
  c.impl_ = std::move(impl);
  return c;
}

const std::string& Checkpoint::dir() const {
  return impl_->dir;
}

const ModelConfig& Checkpoint::config() const {
  return impl_->config;
}

bool Checkpoint::has(std::string_view name) const {
  return impl_->tensors.count(name) != 0;
}

Shape Checkpoint::shape(std::string_view name) const {
  return impl_->at(name).shape;
}

StoredType Checkpoint::stored_type(std::string_view name) const {
  return *impl_->widenable(name).type;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(impl_->tensors.size());
  for (const auto& [name, t] : impl_->tensors) out.push_back(name);
  return out;  // std::map iterates in sorted order
}

Tensor Checkpoint::load(std::string_view name, const Shape& expected) const {
  const auto it = impl_->tensors.find(name);
  if (it == impl_->tensors.end()) {
    throw Error("tensor '" + std::string(name) + "' is missing (config.json implies " +
                shape_text(expected) + ")");
  }
  const StoredTensor& t = *it->second;
  if (t.shape != expected) {
    throw Error("tensor '" + std::string(name) + "' has shape " + shape_text(t.shape) +
                "; config.json implies " + shape_text(expected));
  }
  impl_->widenable(name);
  Tensor out(t.shape);
  checkpoint_detail::widen(t, 0, t.numel, out.data());
  return out;
}

void Checkpoint::load_rows(std::string_view name, int64_t row0, int64_t rows, float* out) const {
  const StoredTensor& t = impl_->widenable(name);
  if (t.shape.size() != 2) {
    throw Error("tensor '" + t.name + "' has shape " + shape_text(t.shape) +
                "; reading rows needs a 2-D tensor");
  }
  if (row0 < 0 || rows < 0 || row0 > t.shape[0] || rows > t.shape[0] - row0) {
    throw Error("rows [" + std::to_string(row0) + ", " + std::to_string(row0 + rows) +
                ") are outside tensor '" + t.name + "' of shape " + shape_text(t.shape));
  }
  const int64_t cols = t.shape[1];
  checkpoint_detail::widen(t, row0 * cols, rows * cols, out);
}

int64_t Checkpoint::stored_bytes() const {
  int64_t total = 0;
  for (const auto& [name, t] : impl_->tensors) {
    if (t->type) total += t->bytes;
  }
  return total;
}

int64_t Checkpoint::fp32_bytes() const {
  int64_t total = 0;
  for (const auto& [name, t] : impl_->tensors) {
    if (t->type) total += t->numel * 4;
  }
  return total;
}

}  // namespace attnscope
