#pragma once
// Renders a Config as JSON for the admin /config endpoint and `config check --print`.
// File paths are shown; file contents and secrets never are.
#include <string>

namespace portcullis {
struct Config;
std::string config_to_json(const Config& config);
}  // namespace portcullis
