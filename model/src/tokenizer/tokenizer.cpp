// The public Tokenizer: loads a tokenizer.json into its parts and runs them in `tokenizers`' order
// (added tokens on the raw text, normalizer, added tokens on the normalized text, pre-tokenizer,
// BPE per word, post-processor).
#include "attnscope/tokenizer.hpp"

#include <fstream>
#include <sstream>

#include "attnscope/error.hpp"
#include "tokenizer/added_tokens.hpp"
#include "tokenizer/bpe.hpp"
#include "tokenizer/decoders.hpp"
#include "tokenizer/json_util.hpp"
#include "tokenizer/normalizers.hpp"
#include "tokenizer/post_processor.hpp"
#include "tokenizer/pre_tokenizers.hpp"
#include "tokenizer/utf8.hpp"

namespace attnscope {

using tok::Json;

struct Tokenizer::Impl {
  tok::Bpe bpe;
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  tok::AddedTokens added;
  tok::PostProcessor post;
  std::unique_ptr<tok::Decoder> decoder;
  bool byte_level = false;
  std::string metaspace = "\u2581";  // what stands for a space in SentencePiece-style tokens
  int64_t vocab_size = 0;

  // Raw vocabulary string of `id`: added tokens first, as `tokenizers` looks them up.
  const std::string* token_of(int32_t id) const {
    if (const tok::AddedToken* a = added.find_id(id)) return &a->content;
    return bpe.id_to_token(id);
  }
};

namespace {

// The Metaspace replacement character a pre-tokenizer or decoder names, if any.
void find_metaspace(const Json& j, std::string& out) {
  if (j.is_object()) {
    auto type = j.find("type");
    auto rep = j.find("replacement");
    if (type != j.end() && *type == "Metaspace" && rep != j.end() && rep->is_string())
      out = rep->get<std::string>();
    for (const auto& [key, value] : j.items())
      if (value.is_array() || value.is_object()) find_metaspace(value, out);
  } else if (j.is_array()) {
    for (const Json& v : j) find_metaspace(v, out);
  }
}

}  // namespace

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the tokenizer file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error(path + ": cannot read the tokenizer file");
  return from_json(text.str(), path);
}

Tokenizer Tokenizer::from_json(std::string_view json_text, const std::string& origin_name) {
  const tok::Origin origin{origin_name};
  Json j;
  try {
    j = Json::parse(json_text);
  } catch (const Json::exception& e) {
    origin.fail(std::string("is not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) origin.fail("is not a JSON object");
  auto impl = std::make_shared<Impl>();
  const auto field = [&](const char* key) -> const Json& {
    static const Json null_json;
    auto it = j.find(key);
    return it == j.end() ? null_json : *it;
  };
  impl->bpe = tok::Bpe::parse(origin.member(j, "model", "tokenizer.json"), origin);
  impl->normalizer = tok::parse_normalizer(field("normalizer"), origin);
  impl->pre_tokenizer = tok::parse_pre_tokenizer(field("pre_tokenizer"), origin);
  impl->post = tok::PostProcessor::parse(field("post_processor"), origin);
  impl->decoder = tok::parse_decoder(field("decoder"), origin);
  const tok::Bpe& bpe = impl->bpe;
  impl->added = tok::AddedTokens::parse(
      field("added_tokens"), origin, impl->normalizer.get(),
      [&](const std::string& s) { return bpe.token_to_id(s); }, bpe.vocab_entries());
  impl->byte_level = (impl->pre_tokenizer && impl->pre_tokenizer->byte_level()) ||
                     (impl->decoder && impl->decoder->byte_level());
  find_metaspace(field("pre_tokenizer"), impl->metaspace);
  find_metaspace(field("decoder"), impl->metaspace);
  int64_t top = impl->bpe.max_id();
  for (const auto& a : impl->added.tokens()) top = std::max<int64_t>(top, a.id);
  impl->vocab_size = top + 1;
  if (impl->post.max_id() >= impl->vocab_size)
    origin.fail("post_processor adds token id " + std::to_string(impl->post.max_id()) +
                ", outside the vocabulary (ids 0 to " + std::to_string(impl->vocab_size - 1) + ")");
  Tokenizer t;
  t.impl_ = std::move(impl);
  return t;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const Impl& m = *impl_;
  const size_t bad = tok::invalid_utf8_offset(text);
  if (bad != tok::kValidUtf8)
    throw Error("text is not valid UTF-8 (byte " + std::to_string(bad) + " starts no valid " +
                "character)");
  std::vector<tok::Piece> pieces = m.added.split_raw(std::string(text));
  std::vector<tok::Piece> normalized;
  normalized.reserve(pieces.size());
  for (tok::Piece& p : pieces) {
    if (p.token >= 0) {
      normalized.push_back(std::move(p));
      continue;
    }
    if (m.normalizer) p.text = m.normalizer->normalize(std::move(p.text));
    for (tok::Piece& q : m.added.split_normalized(std::move(p))) normalized.push_back(std::move(q));
  }
  if (m.pre_tokenizer) m.pre_tokenizer->pre_tokenize(normalized);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  tok::Bpe::Cache cache;
  for (const tok::Piece& p : normalized) {
    if (p.token >= 0)
      ids.push_back(p.token);
    else
      m.bpe.tokenize(p.text, cache, ids);
  }
  return add_special_tokens ? m.post.apply(std::move(ids)) : ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& m = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    const tok::AddedToken* a = m.added.find_id(id);
    if (a != nullptr && a->special && skip_special_tokens) continue;
    if (a != nullptr) {
      tokens.push_back(a->decode_text);
      continue;
    }
    // Ids outside the vocabulary are skipped, as `tokenizers` skips them.
    if (const std::string* t = m.bpe.id_to_token(id)) tokens.push_back(*t);
  }
  if (!m.decoder) {
    std::string out;
    for (size_t k = 0; k < tokens.size(); ++k) out += (k ? " " : "") + tokens[k];
    return out;
  }
  std::string out;
  for (const std::string& t : m.decoder->decode_chain(std::move(tokens))) out += t;
  return out;
}

std::string Tokenizer::token_display(int32_t id) const {
  const Impl& m = *impl_;
  if (id < 0 || id >= m.vocab_size)
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                std::to_string(m.vocab_size) + ")");
  if (const tok::AddedToken* a = m.added.find_id(id)) return a->content;
  const std::string* t = m.bpe.id_to_token(id);
  if (t == nullptr) return "<unused id " + std::to_string(id) + ">";
  std::string bytes;
  if (m.byte_level) {
    size_t i = 0;
    while (i < t->size()) {
      const size_t at = i;
      const int b = tok::symbol_to_byte(tok::next_code_point(*t, i));
      if (b >= 0)
        bytes += static_cast<char>(b);
      else
        bytes.append(*t, at, i - at);
    }
  } else if (const int b = tok::byte_token_value(*t); b >= 0) {
    bytes += static_cast<char>(b);
  } else {
    size_t i = 0;
    while (i < t->size()) {
      if (t->compare(i, m.metaspace.size(), m.metaspace) == 0) {
        bytes += ' ';
        i += m.metaspace.size();
      } else {
        bytes += (*t)[i++];
      }
    }
  }
  return tok::display_bytes(bytes);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (const std::string* t = impl_->token_of(id)) return *t;
  return std::nullopt;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const tok::AddedToken* a = impl_->added.find_content(std::string(token))) return a->id;
  return impl_->bpe.token_to_id(token);
}

int64_t Tokenizer::vocab_size() const {
  return impl_->vocab_size;
}

std::string Tokenizer::kind() const {
  if (impl_->byte_level) return "byte-level BPE";
  if (impl_->bpe.byte_fallback()) return "SentencePiece BPE (byte fallback)";
  return "BPE";
}

}  // namespace attnscope
