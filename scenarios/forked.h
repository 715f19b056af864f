#pragma once
// Jobs in forked child processes, `parallel` at a time, each sending back one JSON value through
// a pipe: the points of a sweep, the variants of a platform scenario (SystemC elaborates one
// machine per process, so every platform run gets its own). A child that crashes or exits
// non-zero yields {"crashed": true}. Results come back in job order.

#include <cstddef>
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

namespace hmmsim::scenario {

std::vector<nlohmann::json> runForked(std::size_t jobs, const std::function<nlohmann::json(std::size_t)>& job,
                                      unsigned parallel);

}  // namespace hmmsim::scenario
