// The portcullis command line: serve | config check | version (more subcommands arrive with
// the authentication, policy and audit issues). Exit codes: 0 ok, 1 failure, 2 usage error.
#include <csignal>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/audit_command.hpp"
#include "cli/login_command.hpp"
#include "cli/policy_commands.hpp"
#include "cli/revoke_command.hpp"
#include "cli/token_inspect.hpp"
#include "core/config.hpp"
#include "core/config_json.hpp"
#include "core/config_loader.hpp"
#include "core/log.hpp"
#include "server/server.hpp"

#include <spdlog/spdlog.h>

namespace {

using portcullis::load_config_file;

constexpr std::string_view kUsage =
    "usage: portcullis <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve --config FILE        run the gateway\n"
    "  config check FILE          validate a config file (exit 0 valid, 1 invalid)\n"
    "  policy lint [--config FILE] [--strict] [--format text|json] [--audit FILE...]\n"
    "                             report risky, dead or unused policy rules\n"
    "  policy test [--verbose] FILE|DIR...\n"
    "                             run table tests of policies (identity + request -> decision)\n"
    "  policy explain --config FILE --route NAME (--identity ID.json | --anonymous)\n"
    "                 --method M --path P [--source-ip IP] [--format text|json]\n"
    "                             show how a route's policy decides, criterion by criterion\n"
    "  audit verify [--key PUB.pem] FILE|DIR...\n"
    "                             check the audit log's hash chain and signed checkpoints\n"
    "  audit export --since T --until T [--subject S] [--route R] [--decision D]\n"
    "               [--format jsonl|csv] FILE|DIR...   records for auditors\n"
    "  revoke --config FILE (--subject S | --token-id JTI | --session ID) [--ttl D]\n"
    "                             deny an identity on every gateway sharing cache.redis\n"
    "  login --issuer URL --client-id ID [--scope S] [--resource R] [--output FILE]\n"
    "                             get a token for bearer routes (device authorization grant)\n"
    "  token inspect [--config FILE] TOKEN\n"
    "                             decode a bearer token and verify it as the gateway would\n"
    "  version                    print the version\n"
    "\n"
    "Run 'portcullis <command> --help' for a command's options.\n";

constexpr std::string_view kServeUsage =
    "usage: portcullis serve --config FILE\n"
    "\n"
    "Runs the gateway on FILE. Signals: SIGHUP reloads FILE (a config with errors is\n"
    "refused and the running one kept); SIGTERM or SIGINT drain in-flight requests for up\n"
    "to server.drain_timeout, then exit 0.\n";

constexpr std::string_view kCheckUsage =
    "usage: portcullis config check [--print] FILE\n"
    "\n"
    "Validates FILE completely and prints every error as FILE:LINE:COLUMN: reason.\n"
    "Exit 0 when valid, 1 when not. --print also prints the effective config as JSON.\n";

bool is_help(std::string_view a) {
  return a == "--help" || a == "-h" || a == "help";
}

int usage_error(std::string_view message, std::string_view usage) {
  std::cerr << "portcullis: " << message << "\n\n" << usage;
  return 2;
}

int print_errors(const portcullis::ConfigLoadResult& result) {
  for (const auto& e : result.errors) std::cerr << e.to_string() << "\n";
  std::cerr << result.errors.size() << (result.errors.size() == 1 ? " error" : " errors")
            << " found\n";
  return 1;
}

int cmd_serve(const std::vector<std::string_view>& args) {
  std::string config_path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (is_help(args[i])) {
      std::cout << kServeUsage;
      return 0;
    }
    if (args[i] == "--config" || args[i] == "-c") {
      if (i + 1 >= args.size()) return usage_error("--config needs a file", kServeUsage);
      config_path = args[++i];
    } else if (args[i].starts_with("--config=")) {
      config_path = args[i].substr(9);
    } else {
      return usage_error("unknown argument '" + std::string(args[i]) + "'", kServeUsage);
    }
  }
  if (config_path.empty()) return usage_error("serve needs --config FILE", kServeUsage);
  auto result = load_config_file(config_path);
  if (!result.ok()) {
    std::cerr << "portcullis: refusing to start, the config has errors:\n";
    return print_errors(result);
  }
  try {
    portcullis::init_logging(result.config->access_log.path);
    std::signal(SIGPIPE, SIG_IGN);
    portcullis::Server server(config_path, result.config);
    return server.run();
  } catch (const std::exception& e) {
    portcullis::app_log()->critical("cannot start: {}", portcullis::escape_for_log(e.what()));
    return 1;
  }
}

int cmd_config(const std::vector<std::string_view>& args) {
  if (args.empty() || is_help(args[0])) {
    std::cout << kCheckUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] != "check") {
    return usage_error("unknown config command '" + std::string(args[0]) + "'", kCheckUsage);
  }
  bool print = false;
  std::string file;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (is_help(args[i])) {
      std::cout << kCheckUsage;
      return 0;
    }
    if (args[i] == "--print") {
      print = true;
    } else if (file.empty() && !args[i].starts_with("-")) {
      file = args[i];
    } else {
      return usage_error("unexpected argument '" + std::string(args[i]) + "'", kCheckUsage);
    }
  }
  if (file.empty()) return usage_error("config check needs a FILE", kCheckUsage);
  auto result = load_config_file(file);
  if (!result.ok()) return print_errors(result);
  if (print) std::cout << portcullis::config_to_json(*result.config) << "\n";
  std::cout << file << ": OK\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  std::string_view command = args[0];
  std::vector<std::string_view> rest(args.begin() + 1, args.end());
  if (is_help(command)) {
    std::cout << kUsage;
    return 0;
  }
  if (command == "version" || command == "--version") {
    if (!rest.empty() && is_help(rest[0])) {
      std::cout << "usage: portcullis version\n\nPrints the version.\n";
      return 0;
    }
    std::cout << "portcullis " << PORTCULLIS_VERSION << "\n";
    return 0;
  }
  if (command == "serve") return cmd_serve(rest);
  if (command == "config") return cmd_config(rest);
  if (command == "policy") {
    constexpr std::string_view kPolicyUsage =
        "usage: portcullis policy lint|test|explain [options]  (--help on each)\n";
    if (rest.empty() || is_help(rest[0])) {
      std::cout << kPolicyUsage;
      return rest.empty() ? 2 : 0;
    }
    const std::vector<std::string_view> sub(rest.begin() + 1, rest.end());
    if (rest[0] == "lint") return portcullis::run_policy_lint(sub);
    if (rest[0] == "test") return portcullis::run_policy_test(sub);
    if (rest[0] == "explain") return portcullis::run_policy_explain(sub);
    return usage_error("unknown policy command '" + std::string(rest[0]) + "'", kPolicyUsage);
  }
  if (command == "audit") return portcullis::run_audit(rest);
  if (command == "revoke") return portcullis::run_revoke(rest);
  if (command == "login") return portcullis::run_login(rest);
  if (command == "token") {
    if (rest.empty() || rest[0] != "inspect") {
      return usage_error("usage: portcullis token inspect [--config FILE] TOKEN", kUsage);
    }
    return portcullis::run_token_inspect({rest.begin() + 1, rest.end()});
  }
  return usage_error("unknown command '" + std::string(command) + "'", kUsage);
}
