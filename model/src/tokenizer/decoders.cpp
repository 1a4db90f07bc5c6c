#include "tokenizer/decoders.hpp"

#include "tokenizer/normalizers.hpp"
#include "tokenizer/regex.hpp"
#include "tokenizer/utf8.hpp"

namespace attnscope::tok {

namespace {

constexpr const char* kSupported =
    "ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence";
constexpr const char* kReplacementChar = "\xEF\xBF\xBD";

class ByteLevelDecoder final : public Decoder {
 public:
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      // A token outside the byte alphabet (an added token's plain text) stays as its own bytes.
      std::string mapped;
      bool all = true;
      size_t i = 0;
      while (i < t.size()) {
        const int b = symbol_to_byte(next_code_point(t, i));
        if (b < 0) {
          all = false;
          break;
        }
        mapped += static_cast<char>(b);
      }
      bytes += all ? mapped : t;
    }
    return {utf8_lossy(bytes)};
  }
  bool byte_level() const override { return true; }
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool prepend)
      : replacement_(std::move(replacement)), prepend_(prepend) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (size_t k = 0; k < tokens.size(); ++k) {
      std::string out;
      const std::string& t = tokens[k];
      size_t i = 0;
      while (i < t.size()) {
        if (t.compare(i, replacement_.size(), replacement_) == 0) {
          // The first token loses its replacement characters: they stood for the prepended space.
          if (!(k == 0 && prepend_)) out += ' ';
          i += replacement_.size();
        } else {
          out += t[i++];
        }
      }
      tokens[k] = std::move(out);
    }
    return tokens;
  }

 private:
  std::string replacement_;
  bool prepend_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern p, std::string content)
      : pattern_(std::move(p)), content_(std::move(content)) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (std::string& t : tokens) {
      std::string out;
      size_t prev = 0;
      for (const Span& m : pattern_.find_all(t)) {
        out.append(t, prev, m.first - prev);
        out += content_;
        prev = m.second;
      }
      out.append(t, prev, std::string::npos);
      t = std::move(out);
    }
    return tokens;
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class ByteFallbackDecoder final : public Decoder {
 public:
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    const auto flush = [&] {
      if (pending.empty()) return;
      if (invalid_utf8_offset(pending) == kValidUtf8) {
        out.push_back(pending);
      } else {
        // Bytes that do not form UTF-8 become one replacement character each.
        for (size_t k = 0; k < pending.size(); ++k) out.emplace_back(kReplacementChar);
      }
      pending.clear();
    };
    for (std::string& t : tokens) {
      const int b = byte_token_value(t);
      if (b >= 0) {
        pending += static_cast<char>(b);
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    return out;
  }
};

class FuseDecoder final : public Decoder {
 public:
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    return {all};
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (std::string& t : tokens) {
      size_t begin = 0, end = t.size();
      for (size_t k = 0; k < start_ && t.compare(begin, content_.size(), content_) == 0; ++k)
        begin += content_.size();
      for (size_t k = 0; k < stop_ && end >= begin + content_.size() &&
                         t.compare(end - content_.size(), content_.size(), content_) == 0;
           ++k)
        end -= content_.size();
      t = t.substr(begin, end - begin);
    }
    return tokens;
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts)
      : parts_(std::move(parts)) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (const auto& p : parts_) tokens = p->decode_chain(std::move(tokens));
    return tokens;
  }
  bool byte_level() const override {
    for (const auto& p : parts_)
      if (p->byte_level()) return true;
    return false;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

}  // namespace

int byte_token_value(std::string_view t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  int v = 0;
  for (size_t k = 3; k < 5; ++k) {
    const char c = t[k];
    v *= 16;
    if (c >= '0' && c <= '9')
      v += c - '0';
    else if (c >= 'A' && c <= 'F')
      v += c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      v += c - 'a' + 10;
    else
      return -1;
  }
  return v;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    const size_t bad = invalid_utf8_offset(bytes.substr(i));
    if (bad == kValidUtf8) {
      out.append(bytes.substr(i));
      break;
    }
    out.append(bytes.substr(i, bad));
    i += bad;
    // The maximal subpart: a valid lead byte and as many fitting continuation bytes as follow.
    const auto lead = static_cast<unsigned char>(bytes[i]);
    size_t len = 1;
    if (lead >= 0xC2 && lead <= 0xF4) {
      const size_t need = utf8_length(lead);
      unsigned char lo = 0x80, hi = 0xBF;
      if (lead == 0xE0) lo = 0xA0;
      if (lead == 0xED) hi = 0x9F;
      if (lead == 0xF0) lo = 0x90;
      if (lead == 0xF4) hi = 0x8F;
      while (len < need && i + len < bytes.size()) {
        const auto c = static_cast<unsigned char>(bytes[i + len]);
        if (c < (len == 1 ? lo : 0x80) || c > (len == 1 ? hi : 0xBF)) break;
        ++len;
      }
    }
    out += kReplacementChar;
    i += len;
  }
  return out;
}

std::unique_ptr<Decoder> parse_decoder(const Json& j, const Origin& origin) {
  if (j.is_null()) return nullptr;
  const std::string type = origin.type_of(j, "decoder");
  const std::string where = "decoder " + type;
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    bool prepend = origin.bool_or(j, "add_prefix_space", where, true);
    const std::string scheme = origin.string_or(j, "prepend_scheme", where, "");
    if (!scheme.empty()) prepend = scheme != "never";
    return std::make_unique<MetaspaceDecoder>(origin.string_or(j, "replacement", where, "\u2581"),
                                              prepend);
  }
  if (type == "Replace") {
    Pattern p = parse_pattern(origin.member(j, "pattern", where), origin, where);
    return std::make_unique<ReplaceDecoder>(std::move(p),
                                            origin.string_required(j, "content", where));
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    const int64_t start = origin.int_or(j, "start", where, 0);
    const int64_t stop = origin.int_or(j, "stop", where, 0);
    if (start < 0 || stop < 0) origin.fail(where + " start and stop must be non-negative");
    return std::make_unique<StripDecoder>(origin.string_required(j, "content", where),
                                          static_cast<size_t>(start), static_cast<size_t>(stop));
  }
  if (type == "Sequence") {
    const Json& list = origin.member(j, "decoders", where);
    if (!list.is_array()) origin.fail(where + " field 'decoders' must be a list");
    std::vector<std::unique_ptr<Decoder>> parts;
    for (const Json& item : list) {
      if (item.is_null()) origin.fail(where + " lists a null decoder");
      parts.push_back(parse_decoder(item, origin));
    }
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  origin.fail("decoder '" + type + "' is not supported; supported: " + kSupported);
}

}  // namespace attnscope::tok
