// The CLI's subcommands: each registers its options on a CLI11 app and runs after parsing.
// Kept apart from main.cpp so each command reads in one sitting.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace attnscope::cli {

// Adds the subcommand to `app`; the returned function runs it (after parsing) and gives the
// process exit code. Engine errors propagate as attnscope::Error; main prints them.
std::function<int()> add_run_command(CLI::App& app);
std::function<int()> add_info_command(CLI::App& app);
std::function<int()> add_bench_command(CLI::App& app);
std::function<int()> add_tokenize_command(CLI::App& app);
std::function<int()> add_model_command(CLI::App& app);

}  // namespace attnscope::cli
