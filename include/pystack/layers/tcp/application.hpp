// How the TCP layer calls an application: the callbacks it detects, the
// outgoing-hook adapter, and the call table behind a client application
// (one handed to `connect()`, whose type is not part of the stack's type).
#pragma once

#include <concepts>
#include <type_traits>

#include "pystack/layers/hooks.hpp"
#include "pystack/layers/tcp/types.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/ethernet.hpp"
#include "pystack/wire/ipv4.hpp"
#include "pystack/wire/tcp.hpp"

namespace pystack {

// What every TCP application must have: somewhere for the data to go.
template <class App, class Connection>
concept tcp_application = requires(App& app, Connection& connection, bytes_view data) {
  app.on_data(connection, data);
};

namespace detail {

template <class App, class Connection>
void tcp_notify_connect(App& app, Connection& c) {
  if constexpr (requires { app.on_connect(c); }) app.on_connect(c);
}
template <class App, class Connection>
void tcp_notify_data(App& app, Connection& c, bytes_view data) {
  app.on_data(c, data);
}
template <class App, class Connection>
void tcp_notify_peer_closed(App& app, Connection& c) {
  if constexpr (requires { app.on_peer_closed(c); }) app.on_peer_closed(c);
}
template <class App, class Connection>
void tcp_notify_closed(App& app, Connection& c, close_reason why) {
  if constexpr (requires { app.on_closed(c, why); }) app.on_closed(c, why);
}
template <class App, class Connection>
void tcp_notify_writable(App& app, Connection& c) {
  if constexpr (requires { app.on_writable(c); }) app.on_writable(c);
}
template <class App, class Context>
void tcp_notify_incoming(App& app, const Context& headers, const tcp::view& segment) {
  if constexpr (requires { app.hook_incoming(headers, segment); }) app.hook_incoming(headers, segment);
}

// An application's `hook_outgoing` overloads as a hook (hooks.hpp): callable
// with exactly the reprs the application accepts, so the layers below skip
// the others at compile time.
template <class App>
struct tcp_outgoing_hook {
  App* app;
  template <class Repr>
    requires requires(App& a, Repr& r) { a.hook_outgoing(r); }
  void operator()(Repr& r) const {
    app->hook_outgoing(r);
  }
};

// The calls a client application answers, as plain function pointers made
// once per application type. Listener applications are named in the stack's
// type and called directly; a client application's type is only known where
// `connect()` is called, so its calls go through this table.
template <class Connection, class Context>
struct tcp_client_table {
  void (*on_connect)(void*, Connection&);
  void (*on_data)(void*, Connection&, bytes_view);
  void (*on_peer_closed)(void*, Connection&);
  void (*on_closed)(void*, Connection&, close_reason);
  void (*on_writable)(void*, Connection&);
  void (*hook_incoming)(void*, const Context&, const tcp::view&);
  void (*hook_tcp)(void*, tcp::repr&);
  void (*hook_ipv4)(void*, ipv4::repr&);
  void (*hook_ethernet)(void*, eth::repr&);
};

template <class App, class Connection, class Context>
inline constexpr tcp_client_table<Connection, Context> tcp_client_table_for{
    [](void* a, Connection& c) { tcp_notify_connect(*static_cast<App*>(a), c); },
    [](void* a, Connection& c, bytes_view d) { tcp_notify_data(*static_cast<App*>(a), c, d); },
    [](void* a, Connection& c) { tcp_notify_peer_closed(*static_cast<App*>(a), c); },
    [](void* a, Connection& c, close_reason r) { tcp_notify_closed(*static_cast<App*>(a), c, r); },
    [](void* a, Connection& c) { tcp_notify_writable(*static_cast<App*>(a), c); },
    [](void* a, const Context& h, const tcp::view& s) { tcp_notify_incoming(*static_cast<App*>(a), h, s); },
    [](void* a, tcp::repr& r) {
      tcp_outgoing_hook<App> hook{static_cast<App*>(a)};
      apply_hook(hook, r);
    },
    [](void* a, ipv4::repr& r) {
      tcp_outgoing_hook<App> hook{static_cast<App*>(a)};
      apply_hook(hook, r);
    },
    [](void* a, eth::repr& r) {
      tcp_outgoing_hook<App> hook{static_cast<App*>(a)};
      apply_hook(hook, r);
    },
};

// A client application seen through its table: it has every callback, and
// each does what the application's own does, or nothing.
template <class Connection, class Context>
struct tcp_client_app {
  void* object;
  const tcp_client_table<Connection, Context>* table;

  void on_connect(Connection& c) { table->on_connect(object, c); }
  void on_data(Connection& c, bytes_view d) { table->on_data(object, c, d); }
  void on_peer_closed(Connection& c) { table->on_peer_closed(object, c); }
  void on_closed(Connection& c, close_reason r) { table->on_closed(object, c, r); }
  void on_writable(Connection& c) { table->on_writable(object, c); }
  // The views go by value to a call out of line, which makes the context
  // the application sees: their addresses then never leave the caller
  // (TCP's receive), which keeps them in registers for every segment of
  // every connection, a client's or not.
  void hook_incoming(const Context& h, const tcp::view& s) {
    incoming(table->hook_incoming, object, h.timestamp(), h.template get<eth::view>(), h.template get<ipv4::view>(), s);
  }
  [[gnu::noinline]] static void incoming(void (*hook)(void*, const Context&, const tcp::view&), void* object,
                                         instant received_at, const eth::view frame, const ipv4::view datagram,
                                         const tcp::view segment) {
    const Context h(received_at, frame, datagram);
    hook(object, h, segment);
  }
  void hook_outgoing(tcp::repr& r) { table->hook_tcp(object, r); }
  void hook_outgoing(ipv4::repr& r) { table->hook_ipv4(object, r); }
  void hook_outgoing(eth::repr& r) { table->hook_ethernet(object, r); }
};

}  // namespace detail
}  // namespace pystack
