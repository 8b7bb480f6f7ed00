#pragma once
// `portcullis token inspect [--config FILE] [--provider NAME] TOKEN|-`: decodes a bearer token
// and, with a config, verifies it exactly as the gateway would (same validator, same key
// store: jwks_file, jwks_uri or discovery), printing each check and its result. Exit 0 when
// the token is valid for a provider, 1 otherwise, 2 on usage errors.
#include <string_view>
#include <vector>

namespace portcullis {
int run_token_inspect(const std::vector<std::string_view>& args);
}  // namespace portcullis
