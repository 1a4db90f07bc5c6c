// Atomic text files (io.hpp): JSON reports and caches share the tensor writers' temp-and-rename.
#include "attnscope/io.hpp"

#include "io_detail.hpp"

namespace attnscope::io {

void save_text(const std::string& path, const std::string& text) {
  detail::write_atomically(path, [&](std::ostream& out) { out << text; });
}

}  // namespace attnscope::io
