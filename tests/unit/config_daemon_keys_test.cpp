// The daemon's own keys of the config, and the shipped overlay.conf: every
// key it shows (commented out) must be the built-in default.
#include "config.hpp"
#include "error.hpp"
#include "expect_error.hpp"

#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <string>

namespace overlay {
namespace {

Config parse(const std::string& text) {
    return parse_config(text, "/etc/left4me/overlay.conf");
}

TEST(ConfigDaemonKeys, DefaultsAndValues) {
    const Config d = default_config();
    EXPECT_EQ(d.executors, 2U);
    EXPECT_EQ(d.max_pending_calls, 256U);
    EXPECT_EQ(d.max_pending_calls_per_user, 32U);
    EXPECT_EQ(d.max_concurrent_authorizations, 8U);
    EXPECT_EQ(d.max_concurrent_authorizations_per_user, 2U);
    EXPECT_EQ(d.operation_timeout_sec, 120U);
    EXPECT_EQ(d.migrate_executors, 2U);
    EXPECT_EQ(d.migrate_timeout_sec, 21600U);
    const Config c = parse("Executors=16\nMaxPendingCalls=1\nMaxPendingCallsPerUser=65536\n"
                           "MaxConcurrentAuthorizations=1024\nOperationTimeoutSec=1\n"
                           "MaxConcurrentAuthorizationsPerUser=7\n"
                           "MigrateExecutors=1\nMigrateTimeoutSec=86400\n");
    EXPECT_EQ(c.migrate_executors, 1U);
    EXPECT_EQ(c.migrate_timeout_sec, 86400U);
    EXPECT_EQ(c.executors, 16U);
    EXPECT_EQ(c.max_pending_calls, 1U);
    EXPECT_EQ(c.max_pending_calls_per_user, 65536U);
    EXPECT_EQ(c.max_concurrent_authorizations, 1024U);
    EXPECT_EQ(c.max_concurrent_authorizations_per_user, 7U);
    EXPECT_EQ(c.operation_timeout_sec, 1U);
}

TEST(ConfigDaemonKeys, OutOfRangeOrNotANumberIsRefusedWithItsLine) {
    const struct {
        const char* text;
        const char* message;
    } cases[] = {
        {"Executors=0\n", "overlay.conf:1: Executors '0' is not a number from 1 to 16"},
        {"\nExecutors=17\n", "overlay.conf:2: Executors '17' is not a number from 1 to 16"},
        {"MaxPendingCalls=0\n", "MaxPendingCalls '0' is not a number from 1 to 65536"},
        {"MaxPendingCallsPerUser=-1\n",
         "MaxPendingCallsPerUser '-1' is not a number from 1 to 65536"},
        {"MaxConcurrentAuthorizations=8x\n",
         "MaxConcurrentAuthorizations '8x' is not a number from 1 to 1024"},
        {"MaxConcurrentAuthorizationsPerUser=0\n",
         "MaxConcurrentAuthorizationsPerUser '0' is not a number from 1 to 1024"},
        {"OperationTimeoutSec=3601\n", "OperationTimeoutSec '3601' is not a number from 1 to 3600"},
        {"OperationTimeoutSec=\n", "OperationTimeoutSec '' is not a number from 1 to 3600"},
        {"MigrateExecutors=17\n", "MigrateExecutors '17' is not a number from 1 to 16"},
        {"MigrateTimeoutSec=59\n", "MigrateTimeoutSec '59' is not a number from 60 to 86400"},
        {"Executors=99999999999999999999\n", "Executors '99999999999999999999' is not a number"},
    };
    for (const auto& c : cases) {
        EXPECT_TRUE(l4m_test::throws_error([&] { parse(c.text); }, ErrorCode::BadConfig, c.message))
            << c.text;
    }
}

TEST(ConfigDaemonKeys, ShippedFileShowsTheDefaults) {
    std::ifstream in(L4M_SOURCE_DIR "/packaging/overlay.conf");
    ASSERT_TRUE(in) << "packaging/overlay.conf";
    std::ostringstream uncommented;
    std::string line;
    int keys = 0;
    while (std::getline(in, line)) {
        // "#Key=value" is a default shown; "# text" is prose.
        if (line.size() > 1 && line[0] == '#' && line[1] != ' ' && line.find('=') != std::string::npos) {
            uncommented << line.substr(1) << "\n";
            ++keys;
        }
    }
    EXPECT_GE(keys, 14);
    const Config shipped = parse(uncommented.str());
    const Config d = default_config();
    EXPECT_EQ(shipped.root, d.root);
    EXPECT_EQ(shipped.instances_dir, d.instances_dir);
    EXPECT_EQ(shipped.allowed_lower_roots, d.allowed_lower_roots);
    EXPECT_EQ(shipped.lowerdirs_key, d.lowerdirs_key);
    EXPECT_EQ(shipped.host_pid, d.host_pid);
    EXPECT_EQ(shipped.mount_attr_flags, d.mount_attr_flags);
    EXPECT_EQ(shipped.mount_api, d.mount_api);
    EXPECT_EQ(shipped.lock_dir, d.lock_dir);
    EXPECT_EQ(shipped.executors, d.executors);
    EXPECT_EQ(shipped.max_pending_calls, d.max_pending_calls);
    EXPECT_EQ(shipped.max_pending_calls_per_user, d.max_pending_calls_per_user);
    EXPECT_EQ(shipped.max_concurrent_authorizations, d.max_concurrent_authorizations);
    EXPECT_EQ(shipped.max_concurrent_authorizations_per_user,
              d.max_concurrent_authorizations_per_user);
    EXPECT_EQ(shipped.operation_timeout_sec, d.operation_timeout_sec);
    EXPECT_EQ(shipped.migrate_executors, d.migrate_executors);
    EXPECT_EQ(shipped.migrate_timeout_sec, d.migrate_timeout_sec);
}

} // namespace
} // namespace overlay
