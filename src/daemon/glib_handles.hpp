// Owners for the GLib objects the authorizer holds, so that every reference
// taken is dropped exactly once, on every path, without hand-written unref
// calls. Each one releases on the thread that destroys it: the authorizer
// destroys them on its GLib thread, or after that thread has ended.
#pragma once

#include <gio/gio.h>
#include <memory>
#include <utility>

namespace overlay::daemon::glib {

// Any GObject (GDBusConnection, GCancellable, PolkitAuthority, ...).
struct ObjectUnref {
    void operator()(gpointer object) const noexcept { g_object_unref(object); }
};
template <typename T> using Object = std::unique_ptr<T, ObjectUnref>;

// Takes a new reference to an object someone else owns.
template <typename T> Object<T> ref(T* object) {
    return Object<T>(static_cast<T*>(g_object_ref(object)));
}

struct MainContextUnref {
    void operator()(GMainContext* context) const noexcept { g_main_context_unref(context); }
};
using MainContext = std::unique_ptr<GMainContext, MainContextUnref>;

struct MainLoopUnref {
    void operator()(GMainLoop* loop) const noexcept { g_main_loop_unref(loop); }
};
using MainLoop = std::unique_ptr<GMainLoop, MainLoopUnref>;

// An attached source: destroyed (it never fires again) and unreferenced.
struct SourceDestroy {
    void operator()(GSource* source) const noexcept {
        g_source_destroy(source);
        g_source_unref(source);
    }
};
using Source = std::unique_ptr<GSource, SourceDestroy>;

// A signal subscription on a connection, unsubscribed when dropped. It holds
// its own reference to the connection.
class SignalSubscription {
  public:
    SignalSubscription() = default;
    SignalSubscription(GDBusConnection* bus, guint id) : bus_(ref(bus)), id_(id) {}
    SignalSubscription(SignalSubscription&& other) noexcept
        : bus_(std::move(other.bus_)), id_(std::exchange(other.id_, 0)) {}
    SignalSubscription& operator=(SignalSubscription&& other) noexcept {
        if (this != &other) {
            reset();
            bus_ = std::move(other.bus_);
            id_ = std::exchange(other.id_, 0);
        }
        return *this;
    }
    SignalSubscription(const SignalSubscription&) = delete;
    SignalSubscription& operator=(const SignalSubscription&) = delete;
    ~SignalSubscription() { reset(); }

    explicit operator bool() const noexcept { return id_ != 0; }

    void reset() noexcept {
        if (id_ != 0) {
            g_dbus_connection_signal_unsubscribe(bus_.get(), std::exchange(id_, 0));
        }
        bus_.reset();
    }

  private:
    Object<GDBusConnection> bus_;
    guint id_ = 0;
};

// Data handed to a GLib callback as its gpointer. GLib owns it from
// user_data() until it calls the matching destroy notify (free_user_data)
// or the callback takes it back (take_user_data), whichever its API does.
template <typename T> gpointer user_data(T value) {
    // The one hand-over of ownership to C: the pointer is released here and
    // reclaimed by free_user_data<T> or take_user_data<T>.
    return std::make_unique<T>(std::move(value)).release();
}

template <typename T> std::unique_ptr<T> take_user_data(gpointer data) noexcept {
    return std::unique_ptr<T>(static_cast<T*>(data));
}

template <typename T> void free_user_data(gpointer data) noexcept {
    take_user_data<T>(data);
}

} // namespace overlay::daemon::glib
