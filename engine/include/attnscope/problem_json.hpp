// The one JSON schema of a problem, shared by sweep files, GUI workload files, presets and exports:
//   {"variant": "swa", "batch": 1, "heads": 8, "kv_heads": 8, "q_len": 256, "kv_len": 256,
//    "head_dim": 64, "v_head_dim": 64, "causal": true, "scale": null, "precision": "fp32",
//    "swa": {"window": 256, "sinks": 0}, "mla": {...}, "moba": {...}, "gated_delta": {...}}
// Every variant's knobs are written (a sweep's base problem serves several variants), each group
// keyed by the variant's name and holding its ParamSpec keys; a knob one variant shares with
// another it builds on (ParamSpec::shared: DSA's latent widths) sits only in the owner's group.
// Readers also accept a group's old key (VariantInfo::json_aliases: "gdn" in sweep files written
// before the schema was shared).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "attnscope/problem.hpp"

namespace attnscope {

nlohmann::ordered_json problem_to_json(const AttentionProblem& problem);

// Reads what problem_to_json writes into `problem`. With `require_all`, every key but "scale" and
// "precision" must be present, and the problem's own variant's group (other variants' groups may
// be missing: a file written before they existed); otherwise an absent key keeps `problem`'s
// value. A wrong type or an
// unknown variant or precision throws Error("'<path>.<key>' must be ..., got <value>"), `path`
// being the object's own path ("" at the top); without `quote_paths` the path stands bare, as in
// sweep files' messages. Values are not validated: AttentionProblem::check is the one judge of
// what runs.
void read_problem_json(const nlohmann::json& j, AttentionProblem& problem, std::string_view path,
                       bool require_all, bool quote_paths = true);

}  // namespace attnscope
