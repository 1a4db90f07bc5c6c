// Fuzz harness: io::load_safetensors (docs/fuzzing.md).
// Properties: a rejected file throws attnscope::Error and nothing else; load_tensors reads the same
// bytes identically through the extension dispatch; an accepted file saved with save_safetensors
// and loaded again gives the same tensors (names, shapes, bitwise data); saving leaves only the
// saved file behind (no temporary file).
#include <cstddef>
#include <cstdint>
#include <string>

#include "attnscope/io.hpp"
#include "fuzz_support.hpp"

using namespace attnscope;
using attnscope::fuzz::finding;
using attnscope::fuzz::only_error;
using attnscope::fuzz::require;

namespace {

// Same names and bitwise-identical tensors; `what` names the comparison in the report.
void require_same(const TensorMap& a, const TensorMap& b, const std::string& what) {
  require(a.size() == b.size(),
          what + ": " + std::to_string(a.size()) + " vs " + std::to_string(b.size()) + " tensors");
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
    require(ia->first == ib->first, what + ": tensor names differ");
    require(fuzz::same_tensor(ia->second, ib->second),
            what + ": tensor '" + ia->first + "' differs (shape " + shape_str(ia->second.shape()) +
                " vs " + shape_str(ib->second.shape()) + " or data)");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::Scratch& scratch = fuzz::Scratch::get();
  const std::string in = scratch.write("in.safetensors", data, size);

  TensorMap loaded;
  const bool ok = only_error("load_safetensors", [&] { loaded = io::load_safetensors(in); });
  TensorMap dispatched;
  const bool ok2 =
      only_error("load_tensors(.safetensors)", [&] { dispatched = io::load_tensors(in); });
  require(ok == ok2, "load_safetensors and load_tensors disagree on accepting the file");
  if (!ok) {
    require(loaded.empty() && dispatched.empty(), "a rejected load changed its output");
    scratch.expect_and_clear({"in.safetensors"}, "a rejected load");
    return 0;
  }
  require_same(loaded, dispatched, "load_safetensors vs load_tensors");
  for (const auto& [name, t] : loaded) {
    require(name != "__metadata__", "'__metadata__' was loaded as a tensor");
    require(t.numel() == shape_numel(t.shape()), "tensor '" + name + "' has " +
                                                     std::to_string(t.numel()) +
                                                     " elements for shape " + shape_str(t.shape()));
  }

  const std::string out = scratch.path("out.safetensors");
  if (!only_error("save_safetensors", [&] { io::save_safetensors(out, loaded); })) {
    finding("save_safetensors rejected tensors that load_safetensors returned");
  }
  TensorMap reloaded;
  if (!only_error("load_safetensors (reload)", [&] { reloaded = io::load_safetensors(out); })) {
    finding("load_safetensors rejected the file save_safetensors wrote");
  }
  require_same(loaded, reloaded, "load -> save -> load");
  scratch.expect_and_clear({"in.safetensors", "out.safetensors"}, "save_safetensors");
  return 0;
}
