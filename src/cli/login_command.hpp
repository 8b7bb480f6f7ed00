#pragma once
// `portcullis login --issuer URL --client-id ID [--scope S] [--resource R] [--ca-file F]
//  [--output FILE] [--timeout D]`: gets an access token for a developer's terminal by the OAuth
// 2.0 Device Authorization Grant (RFC 8628). The IdP's endpoints come from discovery; the user
// opens the printed address in any browser and enters the code; the command polls the token
// endpoint and saves the tokens as JSON with mode 0600 ($XDG_CONFIG_HOME/portcullis/token.json
// by default, directory 0700). Prompts go to stderr; tokens are never printed.
// Exit 0 signed in, 1 refused / expired / IdP error, 2 usage.
#include <string_view>
#include <vector>

namespace portcullis {

int run_login(const std::vector<std::string_view>& args);

}  // namespace portcullis
