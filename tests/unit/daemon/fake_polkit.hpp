// A stand-in for polkitd on a test bus: it owns polkit's name and answers
// CheckAuthorization as told. Header-only: used by the authorizer's tests.
#pragma once

#include "private_bus.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace overlay::daemon::testing {

// Only a guard against a hang: wait_for_checks() ends on an event.
inline constexpr std::chrono::seconds kFakePolkitDeadline{60};

// Something on the bus that owns polkit's name and answers
// CheckAuthorization as told: never (a check stays in polkit until it is
// cancelled), or with a fixed result or error. Remembers what it was asked.
class FakePolkit {
  public:
    enum class Answer { Never, Authorized, Challenge, NotAuthorized, Dismissed, Error };

    struct Asked {
        std::string subject_kind;
        std::string subject_name;
        std::string action;
        std::string instance;
        guint32 flags = 0;
    };

    explicit FakePolkit(const std::string& address, Answer answer = Answer::Never)
        : bus_(connect(address)), answer_(answer) {
        g_dbus_connection_add_filter(bus_.get(), filter, this, nullptr);
        g_autoptr(GError) error = nullptr;
        g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
            bus_.get(), "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
            "RequestName", g_variant_new("(su)", "org.freedesktop.PolicyKit1", 4U),
            G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, nullptr, &error);
        guint32 result = 0;
        if (reply != nullptr) {
            g_variant_get(reply, "(u)", &result);
        }
        if (result != 1) {
            throw std::runtime_error("cannot own polkit's name on the test bus");
        }
    }
    ~FakePolkit() { g_dbus_connection_close_sync(bus_.get(), nullptr, nullptr); }

    // Waits until n checks have reached it.
    bool wait_for_checks(int n) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, kFakePolkitDeadline, [&] { return checks_ >= n; });
    }

    // The checks that have reached it so far.
    int checks() {
        std::lock_guard lock(mutex_);
        return checks_;
    }

    Asked last_asked() {
        std::lock_guard lock(mutex_);
        return asked_;
    }

    // The subjects' bus names, in the order their checks arrived.
    std::vector<std::string> subjects() {
        std::lock_guard lock(mutex_);
        return subjects_;
    }

  private:
    // On GDBus's worker thread. Answers are sent from here: sending does
    // not block.
    static GDBusMessage* filter(GDBusConnection* bus, GDBusMessage* message, gboolean incoming,
                                gpointer data) {
        auto* self = static_cast<FakePolkit*>(data);
        if (!incoming ||
            g_dbus_message_get_message_type(message) != G_DBUS_MESSAGE_TYPE_METHOD_CALL) {
            return message;
        }
        const gchar* member = g_dbus_message_get_member(message);
        g_autoptr(GDBusMessage) reply = nullptr;
        if (g_strcmp0(member, "CancelCheckAuthorization") == 0) {
            // Acknowledged, as polkitd does (the library logs a warning
            // otherwise).
            reply = g_dbus_message_new_method_reply(message);
        } else if (g_strcmp0(member, "CheckAuthorization") == 0) {
            self->remember(g_dbus_message_get_body(message));
            reply = self->answer(message);
        } else {
            return message;
        }
        if (reply != nullptr) {
            g_dbus_connection_send_message(bus, reply, G_DBUS_SEND_MESSAGE_FLAGS_NONE, nullptr,
                                           nullptr);
        }
        g_object_unref(message); // handled here
        return nullptr;
    }

    // CheckAuthorization((sa{sv}) subject, s action, a{ss} details, u flags,
    // s cancellation id).
    void remember(GVariant* body) {
        Asked asked;
        g_autoptr(GVariant) subject = g_variant_get_child_value(body, 0);
        const gchar* kind = nullptr;
        g_autoptr(GVariant) subject_details = nullptr;
        g_variant_get(subject, "(&s@a{sv})", &kind, &subject_details);
        asked.subject_kind = kind;
        const gchar* name = nullptr;
        if (g_variant_lookup(subject_details, "name", "&s", &name)) {
            asked.subject_name = name;
        }
        const gchar* action = nullptr;
        g_autoptr(GVariant) details = nullptr;
        const gchar* cancellation_id = nullptr;
        g_variant_get(body, "(@(sa{sv})&s@a{ss}u&s)", nullptr, &action, &details, &asked.flags,
                      &cancellation_id);
        asked.action = action;
        const gchar* instance = nullptr;
        if (g_variant_lookup(details, "instance", "&s", &instance)) {
            asked.instance = instance;
        }
        std::lock_guard lock(mutex_);
        subjects_.push_back(asked.subject_name);
        asked_ = std::move(asked);
        ++checks_;
        changed_.notify_all();
    }

    GDBusMessage* answer(GDBusMessage* call) const {
        // The result: (is_authorized, is_challenge, details).
        auto result = [call](bool authorized, bool challenge, bool dismissed) {
            GVariantBuilder details;
            g_variant_builder_init(&details, G_VARIANT_TYPE("a{ss}"));
            if (dismissed) {
                g_variant_builder_add(&details, "{ss}", "polkit.dismissed", "true");
            }
            GDBusMessage* reply = g_dbus_message_new_method_reply(call);
            g_dbus_message_set_body(reply,
                                    g_variant_new("((bba{ss}))", authorized, challenge, &details));
            return reply;
        };
        switch (answer_) {
        case Answer::Never:
            return nullptr;
        case Answer::Authorized:
            return result(true, false, false);
        case Answer::Challenge:
            return result(false, true, false);
        case Answer::NotAuthorized:
            return result(false, false, false);
        case Answer::Dismissed:
            return result(false, false, true);
        case Answer::Error:
            return g_dbus_message_new_method_error(call, "org.freedesktop.PolicyKit1.Error.Failed",
                                                   "a rule failed");
        }
        return nullptr;
    }

    glib::Object<GDBusConnection> bus_;
    const Answer answer_;
    std::mutex mutex_;
    std::condition_variable changed_;
    int checks_ = 0;
    Asked asked_;
    std::vector<std::string> subjects_;
};

} // namespace overlay::daemon::testing
