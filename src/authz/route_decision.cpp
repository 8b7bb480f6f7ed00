#include "authz/route_decision.hpp"

namespace portcullis {

PolicyDecision decide_route_policy(const RouteConfig& route, const Identity* identity,
                                   const RequestAttributes& request) {
  if (route.policy) return route.policy->compiled->evaluate(identity, request);
  if (route.auth == AuthMode::public_access) return {true, "public", -1, "public route", {}};
  return {false, "default", -1, "route has no policy", {}};
}

}  // namespace portcullis
