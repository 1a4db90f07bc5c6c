// Fuzz harness: io::load_npy (docs/fuzzing.md).
// Properties: a rejected file throws attnscope::Error and nothing else; load_tensors reads the same
// bytes as one tensor named after the file stem; an accepted array saved with save_npy and loaded
// again is identical (shape, bitwise data); saving leaves only the saved file behind.
#include <cstddef>
#include <cstdint>
#include <string>

#include "attnscope/io.hpp"
#include "fuzz_support.hpp"

using namespace attnscope;
using attnscope::fuzz::finding;
using attnscope::fuzz::only_error;
using attnscope::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::Scratch& scratch = fuzz::Scratch::get();
  const std::string in = scratch.write("in.npy", data, size);

  Tensor loaded;
  const bool ok = only_error("load_npy", [&] { loaded = io::load_npy(in); });
  TensorMap dispatched;
  const bool ok2 = only_error("load_tensors(.npy)", [&] { dispatched = io::load_tensors(in); });
  require(ok == ok2, "load_npy and load_tensors disagree on accepting the file");
  if (!ok) {
    require(loaded.empty() && dispatched.empty(), "a rejected load changed its output");
    scratch.expect_and_clear({"in.npy"}, "a rejected load");
    return 0;
  }
  require(loaded.numel() == shape_numel(loaded.shape()),
          "loaded " + std::to_string(loaded.numel()) + " elements for shape " +
              shape_str(loaded.shape()));
  require(dispatched.size() == 1 && dispatched.begin()->first == "in" &&
              fuzz::same_tensor(dispatched.begin()->second, loaded),
          "load_tensors(.npy) is not the one tensor 'in' that load_npy returns");

  const std::string out = scratch.path("out.npy");
  if (!only_error("save_npy", [&] { io::save_npy(out, loaded); })) {
    // Documented limit: a version 1.0 header holds at most 65535 bytes, so only a shape of
    // thousands of dimensions (a 1 MiB input header can hold that many zeros) may be refused.
    require(loaded.shape().size() > 1000, "save_npy rejected a " +
                                              std::to_string(loaded.shape().size()) +
                                              "-dimensional array that load_npy returned");
    scratch.expect_and_clear({"in.npy"}, "a rejected save_npy");
    return 0;
  }
  Tensor reloaded;
  if (!only_error("load_npy (reload)", [&] { reloaded = io::load_npy(out); })) {
    finding("load_npy rejected the file save_npy wrote");
  }
  require(fuzz::same_tensor(loaded, reloaded), "load -> save -> load changed the array (shape " +
                                                   shape_str(loaded.shape()) + " vs " +
                                                   shape_str(reloaded.shape()) + " or data)");
  scratch.expect_and_clear({"in.npy", "out.npy"}, "save_npy");
  return 0;
}
