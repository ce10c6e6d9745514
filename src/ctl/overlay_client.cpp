#include "overlay_client.hpp"

#include "overlay1_proxy.hpp"
#include "sdbus_compat.hpp"
#include "vocabulary.hpp"

#include <optional>
#include <sdbus-c++/sdbus-c++.h>

namespace overlay::ctl {

// The generated proxy, on our connection: borrowing it keeps sdbus-c++ from
// starting an event-loop thread, which a CLI making one blocking call at a
// time does not need. MountChanged is of no interest here.
class OverlayClient::Proxy : public sdbus::ProxyInterfaces<org::left4me::Overlay1_proxy> {
  public:
    explicit Proxy(sdbus::IConnection& bus)
        : ProxyInterfaces(bus, sdbus_compat::ServiceName(std::string(vocabulary::kBusName)),
                          sdbus_compat::object_path(std::string(vocabulary::kObjectPath))) {
        registerProxy();
    }
    ~Proxy() { unregisterProxy(); }

    // Every method is polkit-checked, so every call is made by hand: the
    // generated methods cannot carry ALLOW_INTERACTIVE_AUTHORIZATION or a
    // per-call timeout. An empty instance: a method without arguments.
    sdbus::MethodReply call_authorized(vocabulary::Verb verb, const std::string& instance,
                                       bool allow_interactive, std::chrono::seconds timeout,
                                       std::optional<bool> flag = std::nullopt) {
        auto call = sdbus_compat::method_call(getProxy(), INTERFACE_NAME,
                                              std::string(vocabulary::verb_info(verb).method));
        if (!instance.empty()) {
            call << instance;
        }
        if (flag) {
            call << *flag;
        }
        if (allow_interactive) {
            sdbus_compat::allow_interactive_authorization(call);
        }
        return getProxy().callMethod(call, timeout);
    }

  private:
    void onMountChanged(const std::string&, const bool&) override {}
};

OverlayClient::OverlayClient()
    : bus_(sdbus::createSystemBusConnection()), proxy_(std::make_unique<Proxy>(*bus_)) {}

OverlayClient::~OverlayClient() = default;

void OverlayClient::mount(const std::string& instance, bool allow_interactive,
                          std::chrono::seconds timeout) {
    proxy_->call_authorized(vocabulary::Verb::Mount, instance, allow_interactive, timeout);
}

void OverlayClient::unmount(const std::string& instance, bool allow_interactive,
                            std::chrono::seconds timeout) {
    proxy_->call_authorized(vocabulary::Verb::Unmount, instance, allow_interactive, timeout);
}

InstanceStatus OverlayClient::status(const std::string& instance, bool allow_interactive,
                                     std::chrono::seconds timeout) {
    auto reply =
        proxy_->call_authorized(vocabulary::Verb::Status, instance, allow_interactive, timeout);
    bool mounted = false;
    std::string merged;
    std::vector<std::string> lowerdirs;
    reply >> mounted >> merged >> lowerdirs;
    return InstanceStatus{instance, mounted, std::move(merged), std::move(lowerdirs)};
}

std::vector<std::string> OverlayClient::migrate(const std::string& instance, bool dry_run,
                                                bool allow_interactive,
                                                std::chrono::seconds timeout) {
    auto reply = proxy_->call_authorized(vocabulary::Verb::Migrate, instance, allow_interactive,
                                         timeout, dry_run);
    std::vector<std::string> lines;
    reply >> lines;
    return lines;
}

InstanceList OverlayClient::list(bool allow_interactive, std::chrono::seconds timeout) {
    auto reply = proxy_->call_authorized(vocabulary::Verb::List, {}, allow_interactive, timeout);
    std::vector<sdbus::Struct<std::string, bool>> entries;
    reply >> entries;
    InstanceList out;
    for (auto& entry : entries) {
        out.emplace_back(std::move(entry.get<0>()), entry.get<1>());
    }
    return out;
}

} // namespace overlay::ctl
