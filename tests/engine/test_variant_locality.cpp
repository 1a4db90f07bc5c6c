// "A variant is one module": outside its own files (a path component that starts with the
// variant's name: engine/src/variants/moba/, kernels/moba.cu, app/gui/views/gated_delta_view.cpp)
// and the three registration files, at most three production files (another variant's module
// counting as one) may name a variant in code; everything else asks the
// registry's capabilities. This counts the names (comments stripped, strings kept) across engine/,
// kernels/ and app/, so that a change which starts asking "which variant?" again fails here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "attnscope/variant.hpp"

namespace attnscope {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxFilesOutside = 3;

// The places docs/architecture.md ("Adding a variant") names as where a variant is registered:
// its knobs, its line in the table, its line in the CUDA list. They name every variant by design.
const std::set<fs::path> kRegistrationFiles = {"engine/include/attnscope/problem.hpp",
                                               "engine/src/variants/table.cpp",
                                               "kernels/cuda_variants.cpp"};

// A file inside another variant's module (engine/src/variants/<other>/...) counts as that module:
// a variant built on another (DSA on MLA's latent, NSA with a window branch) names it in every one
// of its files, and that is one dependency, not several.
fs::path counted_as(const fs::path& rel) {
  auto it = rel.begin();
  const fs::path prefix = "engine/src/variants";
  fs::path acc;
  for (int i = 0; i < 3 && it != rel.end(); ++i, ++it) acc /= *it;
  if (acc == prefix && it != rel.end() && std::next(it) != rel.end()) return prefix / *it;
  return rel;
}

// Source text without // and /* */ comments; string and character literals stay (a name in a
// string is a name in code).
std::string strip_comments(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, 2, "//") == 0) {
      i = s.find('\n', i);
      if (i == std::string::npos) break;
    } else if (s.compare(i, 2, "/*") == 0) {
      const size_t end = s.find("*/", i + 2);
      i = end == std::string::npos ? s.size() : end + 2;
    } else if (s[i] == '"' || s[i] == '\'') {
      const char quote = s[i];
      size_t j = i + 1;
      while (j < s.size() && s[j] != quote) j += s[j] == '\\' ? 2 : 1;
      out.append(s, i, std::min(j + 1, s.size()) - i);
      i = j + 1;
    } else {
      out += s[i++];
    }
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Spellings of a variant: its name and aliases, each also without underscores (GatedDelta).
std::vector<std::string> spellings(const VariantInfo& info) {
  std::vector<std::string> out;
  auto add = [&](std::string_view name) {
    std::string s(name);
    out.push_back(s);
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    out.push_back(s);
  };
  add(info.name);
  for (std::string_view a : info.aliases) add(a);
  return out;
}

// A case-insensitive occurrence that is a word of an identifier: not inside a lowercase run
// ("swap" does not name swa), while CamelCase and snake_case parts count (kMobaMaxDv, moba_args).
bool names(const std::string& text, const std::string& token) {
  const std::string low = lower(text);
  for (size_t at = low.find(token); at != std::string::npos; at = low.find(token, at + 1)) {
    const bool upper_start = std::isupper(static_cast<unsigned char>(text[at]));
    const bool before_ok =
        at == 0 || upper_start || !std::islower(static_cast<unsigned char>(text[at - 1]));
    const size_t end = at + token.size();
    const bool after_ok =
        end >= text.size() || !std::islower(static_cast<unsigned char>(text[end]));
    if (before_ok && after_ok) return true;
  }
  return false;
}

bool own_file(const fs::path& rel, const std::string& name) {
  for (const fs::path& part : rel) {
    if (part.string().rfind(name, 0) == 0) return true;
  }
  return false;
}

TEST(VariantLocality, FewProductionFilesOutsideAModuleNameIt) {
  const fs::path root = ATTNSCOPE_SOURCE_DIR;
  std::map<fs::path, std::string> sources;
  for (const char* dir : {"engine", "lab", "model", "kernels", "app"}) {
    for (const auto& e : fs::recursive_directory_iterator(root / dir)) {
      const std::string ext = e.path().extension().string();
      if (!e.is_regular_file() ||
          !std::set<std::string>{".cpp", ".hpp", ".cu", ".cuh", ".h"}.count(ext))
        continue;
      std::ifstream in(e.path());
      std::stringstream text;
      text << in.rdbuf();
      sources[fs::relative(e.path(), root)] = strip_comments(text.str());
    }
  }
  ASSERT_GT(sources.size(), 50u) << "the source tree was not found under " << root;
  for (const VariantInfo& info : variants()) {
    if (info.name == "dense") continue;  // the baseline every other variant is described against
    std::set<std::string> found;
    for (const auto& [path, text] : sources) {
      if (own_file(path, std::string(info.name)) || kRegistrationFiles.count(path)) continue;
      for (const std::string& s : spellings(info)) {
        if (names(text, s)) {
          found.insert(counted_as(path).string());
          break;
        }
      }
    }
    const std::vector<std::string> files(found.begin(), found.end());
    std::string list;
    for (const std::string& f : files) list += "\n  " + f;
    EXPECT_LE(files.size(), kMaxFilesOutside)
        << info.name << " is named in " << files.size() << " files outside its module:" << list;
  }
}

}  // namespace
}  // namespace attnscope
