#include "dbus_errors.hpp"

#include "sdbus_compat.hpp"
#include "vocabulary.hpp"

#include <exception>
#include <glib.h>
#include <new>
#include <string_view>

namespace overlay::daemon {

namespace {

using vocabulary::kErrorPrefix;

std::string_view auth_error_name(AuthError code) noexcept {
    switch (code) {
    case AuthError::AccessDenied:
        return vocabulary::kAccessDenied;
    case AuthError::InteractiveAuthorizationRequired:
        return vocabulary::kInteractiveAuthorizationRequired;
    case AuthError::LimitsExceeded:
        return vocabulary::kLimitsExceeded;
    }
    return vocabulary::kAccessDenied; // fail closed
}

} // namespace

std::string dbus_safe(std::string text) {
    if (g_utf8_validate(text.data(), static_cast<gssize>(text.size()), nullptr)) {
        return text;
    }
    return printable(text);
}

sdbus::Error make_error(ErrorCode code, const std::string& message) {
    return sdbus_compat::error(std::string(kErrorPrefix) + std::string(error_name(code)),
                               dbus_safe(message));
}

sdbus::Error make_error(AuthError code, const std::string& message) {
    return sdbus_compat::error(std::string(auth_error_name(code)), dbus_safe(message));
}

sdbus::Error error_from_current_exception() noexcept {
    // Building the reply can itself run out of memory: the last resort is a
    // fixed name with no message, which allocates as little as possible.
    try {
        try {
            throw;
        } catch (const Error& e) {
            return make_error(e.code(), e.what());
        } catch (const sdbus::Error& e) {
            // sdbus-c++ reports its own failures with names of its choosing;
            // only names from this table may reach a caller.
            const auto& name = e.getName();
            if (name.starts_with(kErrorPrefix) ||
                name == auth_error_name(AuthError::AccessDenied) ||
                name == auth_error_name(AuthError::InteractiveAuthorizationRequired) ||
                name == auth_error_name(AuthError::LimitsExceeded)) {
                return e;
            }
            return make_error(ErrorCode::Failed, e.what());
        } catch (const std::exception& e) {
            return make_error(ErrorCode::Failed, std::string("internal error: ") + e.what());
        } catch (...) {
            return make_error(ErrorCode::Failed, "internal error");
        }
    } catch (...) {
        return sdbus_compat::error(
            "org.left4me.Overlay1.Error.Failed"); // no message: less to allocate
    }
}

} // namespace overlay::daemon
