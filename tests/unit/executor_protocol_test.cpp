#include "error.hpp"
#include "executor_protocol.hpp"
#include "packet_channel.hpp"
#include "unique_fd.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <thread>

namespace overlay::protocol {
namespace {

TEST(ExecutorProtocol, RequestsRoundTripAndMalformedOnesAreRefused) {
    using vocabulary::Verb;
    for (const Request& request :
         {Request{Verb::Mount, "alpha-1"}, Request{Verb::Unmount, "alpha-1"},
          Request{Verb::Status, "alpha-1"}, Request{Verb::Migrate, "alpha-1"},
          Request{Verb::Migrate, "alpha-1", true}, Request{Verb::List, ""}, Request{}}) {
        const auto r = parse_request(format_request(request));
        ASSERT_TRUE(r) << format_request(request);
        EXPECT_EQ(r->verb, request.verb);
        EXPECT_EQ(r->instance, request.instance);
        EXPECT_EQ(r->dry_run, request.dry_run);
    }
    // The words on the wire: the drop-in's, and sync.
    EXPECT_EQ(format_request({Verb::Mount, "a"}), "mount a\n");
    EXPECT_EQ(format_request({Verb::Unmount, "a"}), "umount a\n");
    EXPECT_EQ(format_request({Verb::Status, "a"}), "status a\n");
    EXPECT_EQ(format_request({Verb::List, ""}), "list\n");
    EXPECT_EQ(format_request({}), "sync\n");
    EXPECT_EQ(format_request({Verb::Migrate, "a"}), "migrate a\n");
    EXPECT_EQ(format_request({Verb::Migrate, "a", true}), "migrate-dry-run a\n");
    // A name with a line break cannot add a request: it travels escaped.
    const auto escaped = parse_request(format_request({vocabulary::Verb::Mount, "a\nlist"}));
    ASSERT_TRUE(escaped);
    EXPECT_EQ(escaped->instance, "a\\x0alist");
    for (const char* bad :
         {"", "mount\n", "mount a b\n", "list x\n", "frob a\n", "mount a", "mount \n",
          "sync\nsync\n", "umount a\nmount b\n", "migrate\n", "migrate-dry-run\n", "migrate a b\n",
          "migrate-dry-run a --x\n", "migrate --dry-run a\n", "unmount a\n",
          "sync a\n", "list-dry-run\n", "mount-dry-run a\n", " mount a\n"}) {
        EXPECT_FALSE(parse_request(bad)) << bad;
    }
}

TEST(ExecutorProtocol, HelloCarriesSettingsWarningsAndConfigErrors) {
    ExecutorHello hello;
    hello.settings.executors = 5;
    hello.settings.max_pending_calls = 7;
    hello.settings.max_pending_calls_per_user = 3;
    hello.settings.max_concurrent_authorizations = 2;
    hello.settings.max_concurrent_authorizations_per_user = 4;
    hello.settings.operation_timeout_sec = 9;
    hello.settings.migrate_executors = 4;
    hello.settings.migrate_timeout_sec = 7200;
    hello.warnings = {"HostPid is 42, not 1", "two\nlines"};
    hello.config_error = "/etc/x.conf:3: bad";
    const auto back = parse_hello(format_hello(hello));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->settings.executors, 5U);
    EXPECT_EQ(back->settings.max_pending_calls, 7U);
    EXPECT_EQ(back->settings.max_pending_calls_per_user, 3U);
    EXPECT_EQ(back->settings.max_concurrent_authorizations, 2U);
    EXPECT_EQ(back->settings.max_concurrent_authorizations_per_user, 4U);
    EXPECT_EQ(back->settings.operation_timeout_sec, 9U);
    EXPECT_EQ(back->settings.migrate_executors, 4U);
    EXPECT_EQ(back->settings.migrate_timeout_sec, 7200U);
    EXPECT_EQ(back->warnings, (std::vector<std::string>{"HostPid is 42, not 1", "two\\x0alines"}));
    EXPECT_EQ(back->config_error, "/etc/x.conf:3: bad");
    for (const char* bad :
         {"", "hello", "ok\n", "hello\nexecutors x\n", "hello\nfrob 1\n", "hello\nexecutors\n"}) {
        EXPECT_FALSE(parse_hello(bad)) << bad;
    }
}

TEST(ExecutorProtocol, MountReportsAreToldApartFromReplies) {
    MountReport changes;
    changes.instances = {{"a", true}, {"b", false}, {"a", false}};
    auto back = parse_mount_report(format_mount_report(changes));
    ASSERT_TRUE(back);
    EXPECT_FALSE(back->complete);
    EXPECT_EQ(back->instances, changes.instances);
    EXPECT_EQ(back->note, "");
    // A note for the daemon's log, with or without changes; one line.
    changes.note = "the event queue overflowed\nmounts-all";
    back = parse_mount_report(format_mount_report(changes));
    ASSERT_TRUE(back);
    EXPECT_FALSE(back->complete);
    EXPECT_EQ(back->note, "the event queue overflowed\\x0amounts-all");
    EXPECT_EQ(back->instances, changes.instances);
    changes.instances.clear();
    back = parse_mount_report(format_mount_report(changes));
    ASSERT_TRUE(back);
    EXPECT_FALSE(back->complete);
    EXPECT_TRUE(back->instances.empty());
    EXPECT_FALSE(back->note.empty());
    MountReport all;
    all.complete = true;
    all.instances = {{"x", true}};
    back = parse_mount_report(format_mount_report(all));
    ASSERT_TRUE(back);
    EXPECT_TRUE(back->complete);
    EXPECT_EQ(back->instances, all.instances);
    EXPECT_EQ(back->how, "");
    all.how = "fanotify statmount";
    back = parse_mount_report(format_mount_report(all));
    ASSERT_TRUE(back);
    EXPECT_TRUE(back->complete);
    EXPECT_EQ(back->how, "fanotify statmount");
    EXPECT_EQ(back->instances, all.instances);
    for (const char* reply : {"ok\n", "error Busy x\n", "restart\n", "mounts\na 2\n", "mounts\na\n",
                              "mounts-all\na 1\n", "mounts"}) {
        EXPECT_FALSE(parse_mount_report(reply)) << reply;
    }
}

struct Pair {
    UniqueFd a, b;
    Pair() {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0);
        a = UniqueFd(fds[0]);
        b = UniqueFd(fds[1]);
    }
};

TEST(PacketChannel, MessagesOfAnySizeArriveWholeAndInOrder) {
    Pair p;
    const std::string big(5 * 1024 * 1024 + 17, 'x');
    std::thread sender([&] {
        EXPECT_TRUE(send_message(p.a.get(), "first\n"));
        EXPECT_TRUE(send_message(p.a.get(), big));
        EXPECT_TRUE(send_message(p.a.get(), ""));
        EXPECT_TRUE(send_message(p.a.get(), "last\n"));
    });
    auto r = receive_message(p.b.get(), std::chrono::seconds(30));
    EXPECT_EQ(r.status, ReceiveStatus::Message);
    EXPECT_EQ(r.message, "first\n");
    r = receive_message(p.b.get(), std::chrono::seconds(30));
    EXPECT_EQ(r.message.size(), big.size());
    EXPECT_EQ(r.message, big);
    r = receive_message(p.b.get(), std::chrono::seconds(30));
    EXPECT_EQ(r.status, ReceiveStatus::Message);
    EXPECT_EQ(r.message, "");
    r = receive_message(p.b.get(), std::chrono::seconds(30));
    EXPECT_EQ(r.message, "last\n");
    sender.join();
}

TEST(PacketChannel, ClosedTimedOutAndMalformed) {
    {
        Pair p;
        EXPECT_EQ(receive_message(p.b.get(), std::chrono::milliseconds(10)).status,
                  ReceiveStatus::TimedOut);
        p.a.reset();
        EXPECT_EQ(receive_message(p.b.get(), std::chrono::milliseconds(1000)).status,
                  ReceiveStatus::Closed);
        EXPECT_FALSE(send_message(p.b.get(), "to nobody\n"));
    }
    {
        Pair p;
        ASSERT_EQ(::send(p.a.get(), "no framing byte", 15, 0), 15);
        EXPECT_THROW(receive_message(p.b.get(), std::chrono::seconds(1)), Error);
    }
    {
        // Half a message, then silence: timed out, never half delivered.
        Pair p;
        ASSERT_EQ(::send(p.a.get(), "+half", 5, 0), 5);
        EXPECT_EQ(receive_message(p.b.get(), std::chrono::milliseconds(50)).status,
                  ReceiveStatus::TimedOut);
    }
    {
        Pair p;
        const std::string too_big(kMaxMessage + 1, 'y');
        EXPECT_THROW(send_message(p.a.get(), too_big), Error);
    }
}

} // namespace
} // namespace overlay::protocol
