#include "cache/redis_config.hpp"

#include <fstream>
#include <sstream>

namespace portcullis {

Expected<std::string, std::string> resolve_redis_password(const RedisConfig& config) {
  if (!config.password.empty() || config.password_file.empty()) return config.password;
  std::ifstream in(config.password_file, std::ios::binary);
  if (!in) return unexpected("cannot read the Redis password file '" + config.password_file + "'");
  std::ostringstream content;
  content << in.rdbuf();
  std::string password = content.str();
  if (password.ends_with('\n')) password.pop_back();
  if (password.ends_with('\r')) password.pop_back();
  if (password.empty()) {
    return unexpected("the Redis password file '" + config.password_file + "' is empty");
  }
  return password;
}

}  // namespace portcullis
