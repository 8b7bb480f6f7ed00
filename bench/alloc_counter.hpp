#pragma once
// Counts heap allocations in the benchmark binary (global operator new is replaced in
// alloc_counter.cpp), so benchmarks can report allocations per operation.
#include <atomic>
#include <cstdint>

namespace portcullis::bench {

std::uint64_t allocations();  // since process start

}  // namespace portcullis::bench
