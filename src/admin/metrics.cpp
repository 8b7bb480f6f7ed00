#include "admin/metrics.hpp"

#include <cstdio>

#include "core/log.hpp"

namespace portcullis {
namespace {

void append_uint(std::string& out, std::uint64_t v) {
  out += std::to_string(v);
}

void append_label_value(std::string& out, std::string_view v) {
  // Prometheus label values escape backslash, quote and newline.
  out.push_back('"');
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

std::string label(std::string_view key, std::string_view value) {
  std::string out(key);
  out.push_back('=');
  append_label_value(out, value);
  return out;
}

void sample(std::string& out, std::string_view name, std::string_view labels, std::uint64_t v) {
  out += name;
  if (!labels.empty()) {
    out.push_back('{');
    out += labels;
    out.push_back('}');
  }
  out.push_back(' ');
  append_uint(out, v);
  out.push_back('\n');
}

void sample_signed(std::string& out, std::string_view name, std::string_view labels,
                   std::int64_t v) {
  out += name;
  out.push_back('{');
  out += labels;
  out += "} ";
  out += std::to_string(v);
  out.push_back('\n');
}

template <class Map>
auto& find_or_create(std::mutex& m, Map& map, std::string_view name) {
  std::lock_guard lock(m);
  auto it = map.find(name);
  if (it == map.end()) {
    using T = typename Map::mapped_type::element_type;
    it = map.emplace(std::string(name), std::make_unique<T>()).first;
  }
  return *it->second;
}

}  // namespace

void Histogram::observe(double seconds) {
  std::size_t i = 0;
  while (i < bounds_.size() && seconds > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

void Histogram::render(std::string& out, std::string_view name, std::string_view labels) const {
  std::uint64_t cumulative = 0;
  std::string bucket_name = std::string(name) + "_bucket";
  char le[32];
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    if (i < bounds_.size()) {
      std::snprintf(le, sizeof le, "%g", bounds_[i]);
    } else {
      std::snprintf(le, sizeof le, "+Inf");
    }
    std::string l(labels);
    if (!l.empty()) l.push_back(',');
    l += label("le", le);
    sample(out, bucket_name, l, cumulative);
  }
  char sum[64];
  std::snprintf(sum, sizeof sum, "%.6f",
                static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6);
  out += name;
  out += "_sum{";
  out += labels;
  out += "} ";
  out += sum;
  out.push_back('\n');
  sample(out, std::string(name) + "_count", labels, cumulative);
}

void RouteMetrics::record(unsigned status, double seconds) {
  unsigned cls = status / 100;
  if (cls >= 1 && cls <= 5) requests_by_class[cls - 1].fetch_add(1, std::memory_order_relaxed);
  duration.observe(seconds);
}

std::string_view to_string(UpstreamErrorKind k) {
  switch (k) {
    case UpstreamErrorKind::connect:
      return "connect";
    case UpstreamErrorKind::timeout:
      return "timeout";
    case UpstreamErrorKind::reset:
      return "reset";
    case UpstreamErrorKind::protocol:
      return "protocol";
    case UpstreamErrorKind::no_healthy:
      return "no_healthy";
    case UpstreamErrorKind::tls:
      return "tls";
    case UpstreamErrorKind::count:
      break;
  }
  return "unknown";
}

MetricsRegistry& MetricsRegistry::instance() {
  static MetricsRegistry registry;
  return registry;
}

RouteMetrics& MetricsRegistry::route(std::string_view name) {
  return find_or_create(mutex_, routes_, name);
}
UpstreamMetrics& MetricsRegistry::upstream(std::string_view name) {
  return find_or_create(mutex_, upstreams_, name);
}
ListenerMetrics& MetricsRegistry::listener(std::string_view name) {
  return find_or_create(mutex_, listeners_, name);
}

LabeledCounter& MetricsRegistry::counter(std::string_view family, std::string_view help,
                                         std::string labels) {
  std::lock_guard lock(mutex_);
  auto it = families_.find(family);
  if (it == families_.end()) it = families_.emplace(std::string(family), Family{}).first;
  if (it->second.help.empty()) it->second.help = help;
  auto& series = it->second.series;
  auto s = series.find(labels);
  if (s == series.end())
    s = series.emplace(std::move(labels), std::make_unique<LabeledCounter>()).first;
  return *s->second;
}

std::string prometheus_labels(
    std::initializer_list<std::pair<std::string_view, std::string_view>> kv) {
  std::string out;
  for (const auto& [k, v] : kv) {
    if (!out.empty()) out.push_back(',');
    out += label(k, v);
  }
  return out;
}

std::string MetricsRegistry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  out.reserve(16 * 1024);
  for (const auto& [name, family] : families_) {
    out += "# HELP " + name + " " + family.help + "\n";
    out += "# TYPE " + name + " counter\n";
    for (const auto& [labels, c] : family.series) {
      sample(out, name, labels, c->value.load(std::memory_order_relaxed));
    }
  }
  static constexpr const char* kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

  out += "# HELP portcullis_requests_total Requests answered, by route and status class.\n";
  out += "# TYPE portcullis_requests_total counter\n";
  for (const auto& [name, m] : routes_) {
    for (int c = 0; c < 5; ++c) {
      auto l = label("route", name) + "," + label("status_class", kClasses[c]);
      sample(out, "portcullis_requests_total", l,
             m->requests_by_class[c].load(std::memory_order_relaxed));
    }
  }
  out += "# HELP portcullis_request_duration_seconds Time from request headers to response end.\n";
  out += "# TYPE portcullis_request_duration_seconds histogram\n";
  for (const auto& [name, m] : routes_) {
    m->duration.render(out, "portcullis_request_duration_seconds", label("route", name));
  }

  out += "# HELP portcullis_upstream_connections_active Open upstream connections.\n";
  out += "# TYPE portcullis_upstream_connections_active gauge\n";
  for (const auto& [name, m] : upstreams_) {
    sample_signed(out, "portcullis_upstream_connections_active", label("upstream", name),
                  m->connections_active.load(std::memory_order_relaxed));
  }
  out += "# HELP portcullis_upstream_connections_total Upstream connections opened.\n";
  out += "# TYPE portcullis_upstream_connections_total counter\n";
  for (const auto& [name, m] : upstreams_) {
    sample(out, "portcullis_upstream_connections_total", label("upstream", name),
           m->connections_total.load(std::memory_order_relaxed));
  }
  out +=
      "# HELP portcullis_upstream_connections_reused_total Requests sent on a pooled connection.\n";
  out += "# TYPE portcullis_upstream_connections_reused_total counter\n";
  for (const auto& [name, m] : upstreams_) {
    sample(out, "portcullis_upstream_connections_reused_total", label("upstream", name),
           m->connections_reused.load(std::memory_order_relaxed));
  }
  out += "# HELP portcullis_upstream_requests_total Requests forwarded to an upstream.\n";
  out += "# TYPE portcullis_upstream_requests_total counter\n";
  for (const auto& [name, m] : upstreams_) {
    sample(out, "portcullis_upstream_requests_total", label("upstream", name),
           m->requests_total.load(std::memory_order_relaxed));
  }
  out += "# HELP portcullis_upstream_errors_total Upstream failures by kind.\n";
  out += "# TYPE portcullis_upstream_errors_total counter\n";
  for (const auto& [name, m] : upstreams_) {
    for (std::size_t k = 0; k < m->errors.size(); ++k) {
      auto l = label("upstream", name) + "," +
               label("kind", to_string(static_cast<UpstreamErrorKind>(k)));
      sample(out, "portcullis_upstream_errors_total", l,
             m->errors[k].load(std::memory_order_relaxed));
    }
  }

  out += "# HELP portcullis_downstream_connections_active Open client connections.\n";
  out += "# TYPE portcullis_downstream_connections_active gauge\n";
  for (const auto& [name, m] : listeners_) {
    sample_signed(out, "portcullis_downstream_connections_active", label("listener", name),
                  m->connections_active.load(std::memory_order_relaxed));
  }
  out += "# HELP portcullis_downstream_connections_total Client connections accepted.\n";
  out += "# TYPE portcullis_downstream_connections_total counter\n";
  for (const auto& [name, m] : listeners_) {
    sample(out, "portcullis_downstream_connections_total", label("listener", name),
           m->connections_total.load(std::memory_order_relaxed));
  }
  out += "# HELP portcullis_tls_handshake_errors_total Failed TLS handshakes.\n";
  out += "# TYPE portcullis_tls_handshake_errors_total counter\n";
  for (const auto& [name, m] : listeners_) {
    sample(out, "portcullis_tls_handshake_errors_total", label("listener", name),
           m->tls_handshake_errors.load(std::memory_order_relaxed));
  }

  out +=
      "# HELP portcullis_bad_requests_total Requests refused before routing (400/408/413/431).\n";
  out += "# TYPE portcullis_bad_requests_total counter\n";
  sample(out, "portcullis_bad_requests_total", "", bad_requests.load(std::memory_order_relaxed));
  out += "# HELP portcullis_config_reloads_total Configuration reloads by result.\n";
  out += "# TYPE portcullis_config_reloads_total counter\n";
  sample(out, "portcullis_config_reloads_total", label("result", "success"),
         reloads_success.load(std::memory_order_relaxed));
  sample(out, "portcullis_config_reloads_total", label("result", "failure"),
         reloads_failure.load(std::memory_order_relaxed));
  out += "# HELP portcullis_config_generation Generation of the running configuration.\n";
  out += "# TYPE portcullis_config_generation gauge\n";
  sample(out, "portcullis_config_generation", "",
         config_generation.load(std::memory_order_relaxed));
  for (const auto& render_more : external_) render_more(out);
  return out;
}

void MetricsRegistry::add_external_renderer(std::function<void(std::string&)> renderer) {
  std::lock_guard lock(mutex_);
  external_.push_back(std::move(renderer));
}

}  // namespace portcullis
