#pragma once
// `portcullis revoke --config FILE (--subject S | --token-id JTI | --session ID) [--ttl D]`:
// records a revocation in the replicas' shared Redis (cache.redis) and announces it, so every
// gateway denies it within a second. Exit 0 done, 1 failure (Redis unreachable, no
// cache.redis), 2 usage.
#include <string_view>
#include <vector>

namespace portcullis {

int run_revoke(const std::vector<std::string_view>& args);

}  // namespace portcullis
