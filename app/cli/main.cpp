// attnscope-cli: run any attention variant headless on generated or .safetensors inputs, time
// sweeps of them (bench), and describe what this build offers. Every failure is one line on
// stderr and a non-zero exit.
#include <cstdio>
#include <iostream>
#include <new>

#include "attnscope/error.hpp"
#include "attnscope/registry.hpp"
#include "commands.hpp"
#ifdef ATTNSCOPE_WITH_CUDA
#include "attnscope/cuda/backend.hpp"
#endif

int main(int argc, char** argv) {
#ifdef ATTNSCOPE_WITH_CUDA
  attnscope::cuda::register_cuda_backend();  // listed always; unavailable without a device
#endif
  std::string names;
  for (const attnscope::VariantInfo& v : attnscope::variants()) {
    names += (names.empty() ? "" : ", ") + std::string(v.name);
  }
  CLI::App app{"attnscope-cli: run, benchmark and inspect attention variants (" + names +
               ") headless"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("attnscope ") + ATTNSCOPE_VERSION);
  auto run = attnscope::cli::add_run_command(app);
  auto info = attnscope::cli::add_info_command(app);
  auto bench = attnscope::cli::add_bench_command(app);
  auto tokenize = attnscope::cli::add_tokenize_command(app);
  auto model = attnscope::cli::add_model_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help / --version
    std::cerr << "attnscope-cli: error: " << e.what() << " (see --help)\n";
    return 2;
  }
  try {
    if (app.got_subcommand("run")) return run();
    if (app.got_subcommand("bench")) return bench();
    if (app.got_subcommand("tokenize")) return tokenize();
    if (app.got_subcommand("model")) return model();
    return info();
  } catch (const attnscope::Error& e) {
    std::cerr << "attnscope-cli: error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "attnscope-cli: error: out of memory while running this problem (try a smaller "
                 "shape)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "attnscope-cli: internal error: " << e.what() << "\n";
    return 3;
  }
}
