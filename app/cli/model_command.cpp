// `attnscope-cli tokenize` and `attnscope-cli model`: a Hugging Face model folder on real text
// (docs/models.md). `model` runs the forward pass through a backend and reports perplexity and
// speed; it writes the logits, one (layer, head) attention map, the head atlas (every head
// statistic of every head), or, with --attention, what the model would lose on this text if its
// attention were another variant. Every check that can fail
// runs before the forward, and outputs are written only after everything succeeded.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "attnscope/error.hpp"
#include "attnscope/head_stats.hpp"
#include "attnscope/io.hpp"
#include "attnscope/model.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"
#include "attnscope/tokenizer.hpp"
#include "attnscope/whatif.hpp"
#include "commands.hpp"
#include "flags.hpp"

namespace attnscope::cli {
namespace {

struct TextSource {
  std::optional<std::string> text, text_file;
  std::string ids;
};

void add_text_flags(CLI::App& cmd, TextSource& t, bool with_ids) {
  auto* text = cmd.add_option("--text", t.text, "The text (UTF-8)");
  auto* file = cmd.add_option("--text-file", t.text_file, "Read the text from a file (UTF-8)");
  text->excludes(file);
  if (with_ids) {
    auto* ids = cmd.add_option("--ids", t.ids, "Token ids instead of text: 1,2,3");
    ids->excludes(text)->excludes(file);
  }
}

std::string read_text(const TextSource& t) {
  if (t.text) return *t.text;
  std::ifstream in(*t.text_file, std::ios::binary);
  if (!in) throw Error("cannot read --text-file '" + *t.text_file + "'");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<int32_t> encode_text(const Tokenizer& tokenizer, const TextSource& t) {
  const std::string text = read_text(t);
  if (text.empty()) throw Error("the text is empty; give some text to tokenize");
  return tokenizer.encode(text);
}

// JSON can't hold NaN (a one-token text has no next-token prediction): null instead.
nlohmann::json number(double x) {
  return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json();
}

// ----- tokenize -----

struct TokenizeOptions {
  std::string model;
  TextSource text;
  bool json = false;
};

int tokenize(const TokenizeOptions& o) {
  if (!o.text.text && !o.text.text_file) throw Error("give the text: --text or --text-file");
  const std::string path = o.model + "/tokenizer.json";
  const Tokenizer tokenizer = Tokenizer::from_file(path);
  const std::vector<int32_t> ids = encode_text(tokenizer, o.text);
  nlohmann::json tokens = nlohmann::json::array();
  for (int32_t id : ids) tokens.push_back(tokenizer.token_display(id));
  if (o.json) {
    std::cout << nlohmann::json{{"ids", ids}, {"tokens", tokens}}.dump() << "\n";
    return 0;
  }
  std::cout << ids.size() << " tokens (" << tokenizer.kind() << ")\n";
  for (size_t i = 0; i < ids.size(); ++i) {
    std::cout << i << "\t" << ids[i] << "\t" << nlohmann::json(tokens[i]).dump() << "\n";
  }
  return 0;
}

// ----- model -----

struct ModelOptions {
  std::string model;
  TextSource text;
  std::string backend;
  std::optional<std::string> out, map, atlas;
  std::optional<int64_t> map_layer, map_head;
  std::string map_size = "256,256", pool = "max", map_region;
  std::optional<std::string> attention;
  std::string layers;
  // The what-if variants' knobs (--window, --sinks, --block-size, --top-k, ...), by key.
  std::map<std::string, std::optional<int64_t>, std::less<>> knobs;
  std::map<std::string, bool, std::less<>> switches;
  bool json = false;
};

std::vector<int32_t> read_ids(const Model& model, const ModelOptions& o) {
  if (!o.text.ids.empty()) {
    std::vector<int32_t> ids;
    for (int64_t id : parse_int_list(o.text.ids, "--ids")) {
      if (id < 0 || id > INT32_MAX) {
        throw Error("--ids: token id " + std::to_string(id) +
                    " is outside this model's vocabulary 0-" +
                    std::to_string(model.config().vocab_size - 1));
      }
      ids.push_back(int32_t(id));
    }
    return ids;
  }
  if (!o.text.text && !o.text.text_file) throw Error("give the text: --text, --text-file or --ids");
  return encode_text(model.tokenizer(), o.text);
}

std::optional<MapRequest> map_request(const ModelOptions& o, const Model& model, int64_t tokens) {
  const bool any = o.map_layer || o.map_head || !o.map_region.empty();
  if (!o.map) {
    if (any) throw Error("--map-layer, --map-head and --map-region need --map FILE.npy");
    return std::nullopt;
  }
  if (!o.map_layer || !o.map_head) throw Error("--map needs --map-layer N and --map-head H");
  const int64_t layers = model.config().layers;
  if (*o.map_layer < 0 || *o.map_layer >= layers) {
    throw Error("--map-layer " + std::to_string(*o.map_layer) +
                " is outside this model's layers 0-" + std::to_string(layers - 1));
  }
  MapRequest req;
  req.head = *o.map_head;
  const std::vector<int64_t> size = parse_ints(o.map_size, 2, "--map-size");
  req.out_rows = size[0];
  req.out_cols = size[1];
  if (o.pool != "max" && o.pool != "mean") throw Error("--pool must be 'max' or 'mean'");
  req.pool = o.pool == "max" ? Pool::max : Pool::mean;
  if (!o.map_region.empty()) {
    const auto r = parse_ints(o.map_region, 4, "--map-region");
    req.row0 = r[0], req.row1 = r[1], req.col0 = r[2], req.col1 = r[3];
  }
  resolve_map_request(model.attention_problem(tokens), req);  // fails now, not after the forward
  return req;
}

// "block_size" -> "block-size", as ParamSpec::flag() spells it.
std::string dashed(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}

std::optional<WhatIfRequest> what_if_request(const ModelOptions& o, const Model& model) {
  if (!o.attention) {
    if (!o.layers.empty())
      throw Error("--layers chooses where --attention replaces dense; give --attention");
    for (const auto& [key, value] : o.knobs) {
      if (value)
        throw Error("--" + dashed(key) + " sets a what-if variant's knob; give --attention");
    }
    for (const auto& [key, on] : o.switches) {
      if (on) throw Error("--" + dashed(key) + " sets a what-if variant's knob; give --attention");
    }
    return std::nullopt;
  }
  const VariantInfo* info = find_variant(*o.attention);
  if (!info) {
    throw Error("--attention '" + *o.attention +
                "' is not a variant; choose from: " + what_if_variant_names());
  }
  WhatIfRequest r;
  r.variant = AttentionProblem::defaults(info->id);
  std::vector<std::string> unused;
  const auto has = [&](std::string_view key) {
    return std::any_of(info->params.begin(), info->params.end(),
                       [&](const ParamSpec& p) { return p.key == key; });
  };
  for (const auto& [key, value] : o.knobs) {
    if (value && !has(key)) unused.push_back(key);
  }
  for (const auto& [key, on] : o.switches) {
    if (on && !has(key)) unused.push_back(key);
  }
  if (!unused.empty()) {
    throw Error("--attention " + std::string(info->name) + " has no knob '" + unused.front() +
                "'; its knobs: " + describe_params(r.variant));
  }
  for (const ParamSpec& p : info->params) {
    if (p.type == ParamSpec::Type::boolean) {
      if (auto it = o.switches.find(p.key); it != o.switches.end() && it->second)
        p.set(r.variant, 1);
    } else if (auto it = o.knobs.find(p.key); it != o.knobs.end() && it->second) {
      p.set(r.variant, *it->second);
    }
  }
  if (!o.layers.empty()) {
    std::tie(r.first_layer, r.last_layer) = parse_layer_range(o.layers, model.config().layers);
  }
  return r;
}

nlohmann::json times_json(const ForwardTimes& t) {
  return {{"total", t.total}, {"attention", t.attention}, {"gemm", t.gemm}, {"other", t.other}};
}

// One statistic as the atlas file holds it: values[layer][head], NaN as null.
nlohmann::json stat_json(const HeadStatTable& t, const HeadStatsOptions& options) {
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t l = 0; l < t.layers; ++l) {
    nlohmann::json row = nlohmann::json::array();
    for (int64_t h = 0; h < t.heads; ++h) row.push_back(number(t.at(l, h)));
    rows.push_back(std::move(row));
  }
  return {{"title", head_stat_title(t.stat, options)},
          {"note", t.note},
          {"tokens", t.tokens},
          {"values", rows}};
}

// The head atlas (docs/models.md): the text statistics from the forward's own layers (`text`,
// one set of tables per layer), then the two probes, each on a forward of its own. A probe this
// model cannot run (retrieval without a tokenizer, positions too few) is listed under "skipped"
// with the reason; the rest of the atlas is still written.
nlohmann::json atlas_json(const Model& model, const std::vector<std::vector<HeadStatTable>>& text,
                          const HeadStatsOptions& options) {
  const ModelConfig& c = model.config();
  nlohmann::json stats = nlohmann::json::object(), skipped = nlohmann::json::object();
  for (size_t s = 0; !text.empty() && s < text.front().size(); ++s) {
    HeadStatTable t = text.front()[s];
    t.layers = int64_t(text.size());
    t.values.clear();
    for (const std::vector<HeadStatTable>& layer : text) {
      t.values.insert(t.values.end(), layer[s].values.begin(), layer[s].values.end());
    }
    stats[std::string(head_stat_key(t.stat))] = stat_json(t, options);
  }
  for (HeadStat probe : {HeadStat::induction, HeadStat::retrieval}) {
    try {
      const HeadStatTable t = probe == HeadStat::induction ? induction_scores(model, options)
                                                           : retrieval_scores(model, options);
      stats[std::string(head_stat_key(probe))] = stat_json(t, options);
    } catch (const Error& e) {
      skipped[std::string(head_stat_key(probe))] = e.what();
    }
  }
  return {{"model", model.checkpoint().dir()},
          {"config", c.describe()},
          {"layers", c.layers},
          {"heads", c.heads},
          {"options",
           {{"sink_tokens", options.sink_tokens},
            {"local_tokens", options.local_tokens},
            {"induction_length", options.induction_length},
            {"retrieval_length", options.retrieval_length},
            {"seed", options.seed}}},
          {"stats", stats},
          {"skipped", skipped}};
}

int run_model(const ModelOptions& o) {
  if (o.out) io::check_output_path(*o.out, "--out");
  if (o.map) io::check_output_path(*o.map, "--map");
  if (o.out && o.map && *o.out == *o.map) throw Error("--out and --map name the same file");
  if (o.atlas) {
    io::check_output_path(*o.atlas, "--atlas");
    if ((o.out && *o.out == *o.atlas) || (o.map && *o.map == *o.atlas)) {
      throw Error("--atlas names the same file as --out or --map");
    }
    if (o.attention) {
      throw Error("--atlas measures the model's own attention; it cannot run with --attention");
    }
  }
  const std::string backend_name = o.backend.empty() ? default_backend() : o.backend;
  make_backend(backend_name);  // an unknown or unavailable backend fails before loading weights

  const Model model = Model::load(o.model);
  const std::vector<int32_t> ids = read_ids(model, o);
  model.check_ids(ids);
  const int64_t L = int64_t(ids.size());
  const std::optional<MapRequest> req = map_request(o, model, L);
  std::optional<WhatIfRequest> what = what_if_request(o, model);

  // The map's layer, copied out of the forward as it passes (no capture of every layer), and the
  // atlas's text statistics, measured on each layer as it passes.
  std::optional<LayerAttention> map_layer;
  HeadStatsOptions atlas_options;
  atlas_options.backend = backend_name;
  std::vector<std::vector<HeadStatTable>> atlas_text;
  const auto observe = [&](int64_t layer, const LayerAttention& a) {
    if (req && layer == *o.map_layer) map_layer = a;
    if (o.atlas) atlas_text.push_back(layer_text_stats(a, atlas_options));
  };

  nlohmann::json j;
  Tensor hidden;  // the final hidden states of the forward whose logits --out writes
  double seconds = 0;
  if (what) {
    what->backend = backend_name;
    what->observe = observe;
    check_what_if(model, ids, *what);
    WhatIfReport r = what_if(model, ids, *what);
    seconds = r.dense_seconds.total + r.variant_seconds.total;
    nlohmann::json recall = nlohmann::json::array(), error = nlohmann::json::array();
    nlohmann::json recall_heads = nlohmann::json::array(), error_heads = nlohmann::json::array();
    nlohmann::json layers = nlohmann::json::array();
    for (const WhatIfLayer& m : r.layers) {
      layers.push_back(m.layer);
      recall.push_back(m.mean_recall());
      error.push_back(m.mean_output_error());
      recall_heads.push_back(m.recall);
      error_heads.push_back(m.output_error);
    }
    j = {{"attention", r.variant},
         {"ppl", number(r.ppl)},
         {"ppl_dense", number(r.ppl_dense)},
         {"kl_mean", r.kl_mean},
         {"layers", layers},
         {"recall", recall},
         {"output_error", error},
         {"recall_per_head", recall_heads},
         {"output_error_per_head", error_heads},
         {"times_dense", times_json(r.dense_seconds)},
         {"times", times_json(r.variant_seconds)}};
    hidden = std::move(r.hidden);
  } else {
    ForwardOptions fo;
    fo.backend = backend_name;
    fo.keep_logits = false;  // --out recomputes them from the hidden states
    fo.observe = observe;
    ForwardResult r = model.forward(ids, fo);
    seconds = r.seconds.total;
    j = {{"ppl", number(r.perplexity())}, {"times", times_json(r.seconds)}};
    hidden = std::move(r.hidden);
  }

  Tensor map;
  if (req) {
    map = make_backend(backend_name)
              ->attention_map(map_layer->problem, map_layer->inputs, map_layer->result, *req, {});
  }
  io::OutputBatch batch;
  std::vector<std::string> written;
  if (o.out) {
    IndexTensor id_tensor({L});
    std::copy(ids.begin(), ids.end(), id_tensor.data());
    io::save_safetensors(*o.out, {{"logits", model.lm_head(hidden, 0, L)}}, {{"ids", id_tensor}},
                         &batch);
    written.push_back(*o.out);
  }
  if (req) {
    io::save_npy(*o.map, map, &batch);
    written.push_back(*o.map);
  }
  if (o.atlas) {
    // Staged with the other outputs: all of them appear, or none.
    const std::string staged = *o.atlas + ".atlas-tmp";
    io::save_text(staged, atlas_json(model, atlas_text, atlas_options).dump(1) + "\n");
    batch.stage(staged, *o.atlas);
    written.push_back(*o.atlas);
  }
  batch.commit();

  nlohmann::json tokens = nlohmann::json::array();
  for (int32_t id : ids) {
    // A model's vocabulary may be padded past its tokenizer's (Qwen's is): such ids show as [id].
    const bool known = model.has_tokenizer() && id < model.tokenizer().vocab_size();
    tokens.push_back(known ? model.tokenizer().token_display(id) : "[" + std::to_string(id) + "]");
  }
  j["model"] = o.model;
  j["config"] = model.config().describe();
  j["backend"] = backend_name;
  j["ids"] = ids;
  j["tokens"] = tokens;
  j["seconds"] = seconds;
  j["tokens_per_s"] = seconds > 0 ? double(L) / seconds : 0.0;
  if (o.json) {
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::cout << "model     " << model.config().describe() << "\n"
            << "text      " << L << " tokens\n"
            << "backend   " << backend_name << "\n"
            << "time      " << seconds << " s (" << j["tokens_per_s"].get<double>()
            << " tokens/s), attention " << j["times"]["attention"].get<double>() << " s, GEMMs "
            << j["times"]["gemm"].get<double>() << " s\n";
  if (what) {
    std::cout << "what-if   " << j["attention"].get<std::string>() << " in layers "
              << j["layers"].front() << "-" << j["layers"].back() << "\n"
              << "ppl       " << j["ppl"].dump() << " (dense " << j["ppl_dense"].dump() << ")\n"
              << "KL        " << j["kl_mean"].get<double>()
              << " nats per token (dense || variant)\n";
    for (size_t i = 0; i < j["layers"].size(); ++i) {
      std::cout << "layer " << j["layers"][i] << "  recall " << j["recall"][i].get<double>()
                << "  output error " << j["output_error"][i].get<double>() << "\n";
    }
  } else {
    std::cout << "ppl       " << j["ppl"].dump() << "\n";
  }
  for (const std::string& f : written) std::cout << "wrote     " << f << "\n";
  return 0;
}

}  // namespace

std::function<int()> add_tokenize_command(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "Tokenize text exactly as a model folder's tokenizer.json does");
  cmd->add_option("--model", o->model, "Model folder (its tokenizer.json)")->required();
  add_text_flags(*cmd, o->text, false);
  cmd->add_flag("--json", o->json, "Print {\"ids\": [...], \"tokens\": [...]}");
  return [o] { return tokenize(*o); };
}

std::function<int()> add_model_command(CLI::App& app) {
  auto o = std::make_shared<ModelOptions>();
  CLI::App* cmd = app.add_subcommand(
      "model",
      "Run a Hugging Face model folder on text: perplexity, logits, attention maps, what-if");
  cmd->add_option("--model", o->model, "Model folder: config.json, *.safetensors, tokenizer.json")
      ->required();
  add_text_flags(*cmd, o->text, true);
  cmd->add_option("--backend", o->backend, "Backend for every attention call (see `info`)");
  cmd->add_option("--out", o->out, "Write ids (int64 [L]) and logits (fp32 [L, V]) (.safetensors)");
  cmd->add_option("--map", o->map, "Write the attention map of --map-layer/--map-head (.npy)");
  cmd->add_option("--map-layer", o->map_layer, "Map: layer (0-based)")
      ->check(exact_integer<int64_t>());
  cmd->add_option("--map-head", o->map_head, "Map: query head")->check(exact_integer<int64_t>());
  cmd->add_option("--map-size", o->map_size, "Map resolution ROWS,COLS")->capture_default_str();
  cmd->add_option("--pool", o->pool, "Map pooling: max or mean")->capture_default_str();
  cmd->add_option("--map-region", o->map_region, "Map: ROW0,ROW1,COL0,COL1 (half-open)");
  cmd->add_option("--atlas", o->atlas,
                  "Write the head atlas: every head statistic of every (layer, head) (.json)");
  cmd->add_option("--attention", o->attention,
                  "What-if: run every layer (or --layers) with this variant instead: " +
                      what_if_variant_names());
  cmd->add_option("--layers", o->layers, "What-if: layers A-B (0-based, inclusive)");
  // Each what-if variant's knobs, one flag per key (the run command's spelling and help).
  for (const VariantInfo* v : what_if_variants()) {
    for (const ParamSpec& p : v->params) {
      if (p.shape || o->knobs.count(p.key) || o->switches.count(p.key)) continue;
      const std::string help =
          "What-if " + std::string(v->short_title) + ": " + std::string(p.help);
      if (p.type == ParamSpec::Type::boolean) {
        cmd->add_flag(p.flag(), o->switches[std::string(p.key)], help);
      } else {
        cmd->add_option(p.flag(), o->knobs[std::string(p.key)], help)
            ->check(exact_integer<int64_t>());
      }
    }
  }
  cmd->add_flag("--json", o->json, "Print one JSON object");
  return [o] { return run_model(*o); };
}

}  // namespace attnscope::cli
