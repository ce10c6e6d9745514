// Bringing a fuse-overlayfs-era upperdir over to the kernel's format.
//
// fuse-overlayfs leaves, in an upper it wrote: ".wh.X" files as whiteouts
// (which hide X even in the same layer), opaque directories marked by a
// user.fuseoverlayfs.opaque=y xattr and a ".wh..wh..opq" file, and
// user.fuseoverlayfs.* xattrs (origin, override_stat). The kernel's overlayfs
// knows none of these: it wants char 0/0 whiteouts and
// trusted.overlay.opaque=y. migrate_instance() converts one instance's
// upper in place, under the instance lock, walking it by descriptor as the
// taint scan does (no symlink followed, no other mount entered), and then
// proves the result: the tree fuse-overlayfs showed (computed by its rules
// over the old upper and the lowers) must equal the tree a read-only kernel
// overlay of the converted upper and the lowers shows (a detached mount,
// visible to no one else). Each step adds the kernel form before it removes
// the fuse form, and a marker xattr on the upper keeps the instance refused
// by the taint scan from the first change until verification passed, so an
// interrupted run is simply run again.
#pragma once

#include "config.hpp"

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace overlay {

// Set on the upper's root while a migration is under way or after one whose
// verification failed. Its prefix is fuse-overlayfs' own, so the taint scan
// refuses the instance without knowing of migrations.
inline constexpr std::string_view kMigrationMarkerXattr = "user.fuseoverlayfs.left4me-migration";
inline constexpr std::string_view kMarkerInProgress = "in-progress";
inline constexpr std::string_view kMarkerVerifyFailed = "verification-failed";
// The directory inside the instance dir that receives entries hidden by a
// ".wh.X" beside them (fuse-overlayfs hid them; the kernel would not).
inline constexpr std::string_view kQuarantineDir = "migrate-quarantine";

struct MigrationTotals {
    std::size_t entries = 0;             // upper entries looked at
    std::size_t whiteouts_converted = 0; // .wh.X -> char 0/0 X
    std::size_t whiteouts_removed = 0;   // .wh.X with nothing below to hide
    std::size_t opaque_set = 0;          // trusted.overlay.opaque=y added
    std::size_t markers_removed = 0;     // .wh..wh..opq files, .wh..opq nodes
    std::size_t owners_set = 0;          // chown from override_stat
    std::size_t modes_set = 0;           // chmod from override_stat
    std::size_t xattrs_removed = 0;      // user.fuseoverlayfs.*, user.overlay.*, override_stat
    std::size_t quarantined = 0;         // X moved away from beside .wh.X
    // Not changes: inodes whose user.* override_stat is not applied (another
    // owner's, or a file with more than one link), each reported.
    std::size_t left_alone = 0;
    std::size_t changes() const {
        return whiteouts_converted + whiteouts_removed + opaque_set + markers_removed + owners_set +
               modes_set + xattrs_removed + quarantined;
    }
};

struct MigrationReport {
    bool dry_run = false;
    std::vector<std::string> changes; // one printable line per change, in walk order
    MigrationTotals totals;
    std::string quarantine;           // absolute path of this run's quarantine dir, if used
    std::size_t verified_entries = 0; // entries compared (real run)
    // The totals line and the summary.
    std::vector<std::string> summary_lines() const;
    // Every line to show: the changes, then summary_lines().
    std::vector<std::string> lines() const;
};

// Throws Error: InvalidName, NoSuchInstance, BadConfig, LowerdirNotAllowed,
// UnsafePath (symlinked or mounted-over upper, another mount inside it, too
// deep), AlreadyMounted, Busy (lock), UpperdirTainted (verification found a
// difference, or an earlier run's did: the instance stays refused), Failed.
// on_change, when given, is called with each change line as it is made (or,
// in a dry run, planned), so that a caller can show them even when the run
// then fails. stop_after, for tests: stop (throw Failed) after this many
// changes of a real run, to leave a half-converted upper behind as a crash
// would; 0: never.
//
// setid: whether the conversion may issue a chmod whose mode carries
// S_ISUID or S_ISGID (an override asking for set-id bits or keeping them,
// or the chown of a set-id inode, which clears them and needs them set
// again). The service's Migrate executor runs under RestrictSUIDSGID=yes,
// which fails such a chmod with EPERM part way: it passes Refuse, and such
// an inode is refused in the planning pass, before anything changes (the
// dry run says the same). The root drop-in passes Set.
enum class SetIdBits { Refuse, Set };
using MigrationLineSink = std::function<void(const std::string&)>;
MigrationReport migrate_instance(const Config& config, std::string_view name, bool dry_run,
                                 SetIdBits setid, const MigrationLineSink& on_change = {},
                                 std::size_t stop_after = 0);

} // namespace overlay
