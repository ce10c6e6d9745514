#include "dbus_errors.hpp"
#include "sdbus_compat.hpp"

#include <gtest/gtest.h>
#include <stdexcept>
#include <string>

using overlay::Error;
using overlay::ErrorCode;
using overlay::daemon::AuthError;
using overlay::daemon::dbus_safe;
using overlay::daemon::error_from_current_exception;
using overlay::daemon::make_error;

namespace {

template <typename Throw> sdbus::Error mapped(Throw do_throw) {
    try {
        do_throw();
    } catch (...) {
        return error_from_current_exception();
    }
    ADD_FAILURE() << "nothing was thrown";
    return overlay::sdbus_compat::error("none", "none");
}

} // namespace

TEST(DbusErrors, EveryErrorCodeHasItsInterfaceName) {
    const std::pair<ErrorCode, const char*> table[] = {
        {ErrorCode::InvalidName, "InvalidName"},
        {ErrorCode::NoSuchInstance, "NoSuchInstance"},
        {ErrorCode::BadConfig, "BadConfig"},
        {ErrorCode::LowerdirNotAllowed, "LowerdirNotAllowed"},
        {ErrorCode::UnsafePath, "UnsafePath"},
        {ErrorCode::UpperdirTainted, "UpperdirTainted"},
        {ErrorCode::AlreadyMounted, "AlreadyMounted"},
        {ErrorCode::NotMounted, "NotMounted"},
        {ErrorCode::Busy, "Busy"},
        {ErrorCode::Failed, "Failed"},
    };
    for (const auto& [code, name] : table) {
        const sdbus::Error e = make_error(code, "instance alpha: why");
        EXPECT_EQ(e.getName(), std::string("org.left4me.Overlay1.Error.") + name);
        EXPECT_EQ(e.getMessage(), "instance alpha: why");
    }
}

TEST(DbusErrors, AuthorizationErrorsHaveTheBusNames) {
    EXPECT_EQ(make_error(AuthError::AccessDenied, "m").getName(),
              "org.freedesktop.DBus.Error.AccessDenied");
    EXPECT_EQ(make_error(AuthError::InteractiveAuthorizationRequired, "m").getName(),
              "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired");
    const sdbus::Error limits = make_error(AuthError::LimitsExceeded, "too many calls");
    EXPECT_EQ(limits.getName(), "org.freedesktop.DBus.Error.LimitsExceeded");
    EXPECT_EQ(limits.getMessage(), "too many calls");
}

TEST(DbusErrors, OverlayErrorKeepsItsName) {
    const sdbus::Error e = mapped([] { throw Error(ErrorCode::Busy, "instance alpha: busy"); });
    EXPECT_EQ(e.getName(), "org.left4me.Overlay1.Error.Busy");
    EXPECT_EQ(e.getMessage(), "instance alpha: busy");
}

TEST(DbusErrors, SdbusErrorsFromTheTablePassThrough) {
    const sdbus::Error own = mapped([] { throw make_error(ErrorCode::NotMounted, "m"); });
    EXPECT_EQ(own.getName(), "org.left4me.Overlay1.Error.NotMounted");
    EXPECT_EQ(own.getMessage(), "m");
    const sdbus::Error auth = mapped([] { throw make_error(AuthError::LimitsExceeded, "m"); });
    EXPECT_EQ(auth.getName(), "org.freedesktop.DBus.Error.LimitsExceeded");
}

TEST(DbusErrors, ForeignSdbusErrorNamesBecomeFailed) {
    const sdbus::Error e =
        mapped([] { throw overlay::sdbus_compat::error("org.freedesktop.DBus.Error.NoMemory", "oom"); });
    EXPECT_EQ(e.getName(), "org.left4me.Overlay1.Error.Failed");
    const sdbus::Error lookalike =
        mapped([] { throw overlay::sdbus_compat::error("org.left4me.Overlay1.Errors.Busy", "m"); });
    EXPECT_EQ(lookalike.getName(), "org.left4me.Overlay1.Error.Failed");
}

TEST(DbusErrors, OtherExceptionsBecomeFailed) {
    const sdbus::Error std_error = mapped([] { throw std::runtime_error("boom"); });
    EXPECT_EQ(std_error.getName(), "org.left4me.Overlay1.Error.Failed");
    EXPECT_EQ(std_error.getMessage(), "internal error: boom");
    const sdbus::Error unknown = mapped([] { throw 42; });
    EXPECT_EQ(unknown.getName(), "org.left4me.Overlay1.Error.Failed");
    EXPECT_EQ(unknown.getMessage(), "internal error");
}

TEST(DbusErrors, DbusSafeEscapesInvalidUtf8Only) {
    EXPECT_EQ(dbus_safe("instance \xc3\xa4lpha"), "instance \xc3\xa4lpha"); // valid UTF-8
    const std::string bad = "path /srv/\xff\xfe/x";
    const std::string safe = dbus_safe(bad);
    EXPECT_EQ(safe, overlay::printable(bad));
    EXPECT_EQ(safe.find('\xff'), std::string::npos);
    // And so does every message built from it.
    const sdbus::Error e = make_error(ErrorCode::UnsafePath, bad);
    EXPECT_EQ(e.getMessage(), safe);
}
