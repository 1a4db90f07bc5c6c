// The one table of variants. Adding a variant means one line here (plus its module folder beside
// this file, its kernels, tests and doc page); nothing else lists variants.
#include <string>

#include "attnscope/error.hpp"
#include "attnscope/variant.hpp"

namespace attnscope {
namespace variant_modules {
VariantInfo dense();
VariantInfo swa();
VariantInfo mla();
VariantInfo moba();
VariantInfo gated_delta();
VariantInfo nsa();
VariantInfo dsa();
}  // namespace variant_modules

const std::vector<VariantInfo>& variants() {
  static const std::vector<VariantInfo> table = {
      variant_modules::dense(), variant_modules::swa(),         variant_modules::mla(),
      variant_modules::moba(),  variant_modules::gated_delta(), variant_modules::nsa(),
      variant_modules::dsa(),
  };
  return table;
}

const VariantInfo& variant_info(VariantId id) {
  for (const VariantInfo& v : variants()) {
    if (v.id == id) return v;
  }
  throw Error("unknown variant id");
}

const VariantInfo* find_variant(std::string_view name) {
  for (const VariantInfo& v : variants()) {
    if (v.name == name) return &v;
    for (std::string_view a : v.aliases) {
      if (a == name) return &v;
    }
  }
  return nullptr;
}

std::string variant_names() {
  std::string s;
  for (const VariantInfo& v : variants()) {
    if (!s.empty()) s += ", ";
    s += v.name;
    if (!v.aliases.empty()) {
      s += " (";
      for (size_t i = 0; i < v.aliases.size(); ++i)
        s += (i ? ", " : "") + std::string(v.aliases[i]);
      s += ")";
    }
  }
  return s;
}

}  // namespace attnscope
