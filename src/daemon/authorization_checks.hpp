// The checks in flight and what each is waiting for: the caller's
// credentials, a free polkit slot, the PolkitAuthority, polkit's answer.
// Single-threaded: every member is called on the GLib thread that runs the
// GMainContext it was given (Authorizer posts work there), so that
// libpolkit-gobject's async calls complete on that thread.
#pragma once

#include "authorizer.hpp"
#include "glib_handles.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <polkit/polkit.h>
#include <vector>

namespace overlay::daemon {

class AuthorizationChecks {
  public:
    // bus: the connection used to ask the bus daemon who is calling.
    // quit: called once, on the thread, when quit_when_idle() was asked
    // and the last check has ended.
    AuthorizationChecks(glib::Object<GDBusConnection> bus, GMainContext* context,
                        unsigned max_polkit_checks, std::function<void()> quit);
    ~AuthorizationChecks();
    AuthorizationChecks(const AuthorizationChecks&) = delete;
    AuthorizationChecks& operator=(const AuthorizationChecks&) = delete;

    void start(AuthRequest request, Authorizer::Callback done);
    // Pending and later checks end with Stopping.
    void cancel_all();
    // cancel_all(), then quit once no check is left.
    void quit_when_idle();

  private:
    enum class Stage { Credentials, WaitingForSlot, WaitingForAuthority, Polkit };
    enum class CancelReason { None, CallerGone, Stopping, Timeout };
    struct Check;
    struct Ref;

    Check* find(std::uint64_t id);
    void finish(std::uint64_t id, AuthResult::Verdict verdict, std::string polkit,
                std::string detail = {});
    void finish_cancelled(Check& check, const std::string& what);
    void cancel(Check& check, CancelReason reason);
    void need_polkit(Check& check);
    void release_slot();
    void start_polkit(Check& check);
    void maybe_quit();

    void on_credentials(std::uint64_t id, GVariant* reply, GError* error);
    void on_authority(PolkitAuthority* authority, GError* error);
    void on_polkit_result(std::uint64_t id, PolkitAuthorizationResult* result, GError* error);

    static void credentials_ready(GObject* source, GAsyncResult* res, gpointer data);
    static void authority_ready(GObject* source, GAsyncResult* res, gpointer data);
    static void polkit_ready(GObject* source, GAsyncResult* res, gpointer data);
    static void name_owner_changed(GDBusConnection*, const gchar*, const gchar*, const gchar*,
                                   const gchar*, GVariant* parameters, gpointer data);
    static gboolean timed_out(gpointer data);

    glib::Object<GDBusConnection> bus_;
    GMainContext* context_;
    std::function<void()> quit_;
    glib::Object<PolkitAuthority> authority_;
    bool authority_pending_ = false;
    std::vector<std::uint64_t> waiting_for_authority_;
    unsigned max_polkit_checks_;
    unsigned polkit_in_flight_ = 0;
    std::deque<std::uint64_t> waiting_for_slot_;
    std::map<std::uint64_t, std::unique_ptr<Check>> checks_;
    std::uint64_t next_id_ = 1;
    bool stopping_ = false;
    bool quit_requested_ = false;
};

} // namespace overlay::daemon
