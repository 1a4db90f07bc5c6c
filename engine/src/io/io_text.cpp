// Atomic text files and output batches (io.hpp): JSON reports and caches share the tensor writers'
// temp-and-rename; a batch holds the renames back until every file of a command is written.
#include <filesystem>
#include <system_error>

#include "attnscope/error.hpp"
#include "attnscope/io.hpp"
#include "io/io_detail.hpp"

namespace attnscope::io {

void save_text(const std::string& path, const std::string& text) {
  detail::write_atomically(path, [&](std::ostream& out) { out << text; });
}

void OutputBatch::stage(const std::string& tmp, const std::string& path) {
  for (const auto& [staged_tmp, target] : staged_) {
    if (target == path) throw Error("'" + path + "' is named as two outputs of one command");
  }
  staged_.emplace_back(tmp, path);
}

void OutputBatch::commit() {
  // Renames within one folder; after the first, a failure is unlikely but still reported.
  while (!staged_.empty()) {
    const auto [tmp, path] = staged_.front();
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
      throw Error("cannot write '" + path + "': cannot rename the temporary file (" + ec.message() +
                  ")");
    }
    staged_.erase(staged_.begin());
  }
}

OutputBatch::~OutputBatch() {
  for (const auto& [tmp, path] : staged_) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
  }
}

void check_output_path(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  if (path.empty()) throw Error(what + " needs a file name (got an empty one)");
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    throw Error("cannot write " + what + " '" + path + "': it is a folder");
  }
  const fs::path folder = fs::path(path).parent_path();
  if (!folder.empty() && !fs::is_directory(folder, ec)) {
    throw Error("cannot write " + what + " '" + path + "': folder '" + folder.string() +
                "' does not exist");
  }
}

}  // namespace attnscope::io
