// migrate_instance (migrate.hpp): the run, under the instance lock. Its
// parts: migrate_upper (reading the fuse-overlayfs format from an upper),
// migrate_view (what fuse-overlayfs and the kernel show), migrate_convert
// (the conversion) and migrate_verify (the proof).
#include "migrate.hpp"

#include "error.hpp"
#include "host_layout.hpp"
#include "instance_dir.hpp"
#include "instance_env.hpp"
#include "instance_lock.hpp"
#include "instance_name.hpp"
#include "lower_layers.hpp"
#include "migrate_convert.hpp"
#include "migrate_upper.hpp"
#include "migrate_verify.hpp"
#include "migrate_view.hpp"
#include "mount_point.hpp"
#include "same_mount.hpp"
#include "taint_scan.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace overlay {

using namespace migration;

std::vector<std::string> MigrationReport::lines() const {
    std::vector<std::string> out = changes;
    for (auto& l : summary_lines()) {
        out.push_back(std::move(l));
    }
    return out;
}

std::vector<std::string> MigrationReport::summary_lines() const {
    std::vector<std::string> out;
    const auto& t = totals;
    out.push_back(
        std::string(dry_run ? "would make " : "made ") + count(t.changes(), "change", "changes") +
        " in " + count(t.entries, "entry", "entries") + ": " +
        std::to_string(t.whiteouts_converted) + " whiteouts converted, " +
        std::to_string(t.whiteouts_removed) + " whiteouts removed, " +
        std::to_string(t.opaque_set) + " opaque dirs set, " + std::to_string(t.markers_removed) +
        " opaque markers removed, " + std::to_string(t.owners_set) + " owners set, " +
        std::to_string(t.modes_set) + " modes set, " + std::to_string(t.xattrs_removed) +
        " xattrs removed, " + std::to_string(t.quarantined) + " quarantined" +
        (t.left_alone == 0 ? std::string()
                           : "; " + count(t.left_alone, "entry", "entries") + " left alone"));
    if (dry_run) {
        out.push_back("dry run: nothing was changed");
    } else {
        out.push_back("verified: the kernel overlay shows the same " +
                      count(verified_entries, "entry", "entries") +
                      " as fuse-overlayfs did; the upper is in the kernel's format");
        if (!quarantine.empty()) {
            out.push_back("quarantined entries are in " + printable(quarantine));
        }
    }
    return out;
}

namespace {

// The walks hold a descriptor per layer per level (up to kMaxUpperDepth
// levels of up to 500 layers): the soft limit on open files is raised to
// the hard one for the run, and put back after.
class OpenFilesLimit {
  public:
    OpenFilesLimit() {
        if (::getrlimit(RLIMIT_NOFILE, &saved_) == 0 && saved_.rlim_cur < saved_.rlim_max) {
            rlimit raised = saved_;
            raised.rlim_cur = saved_.rlim_max;
            restore_ = ::setrlimit(RLIMIT_NOFILE, &raised) == 0;
        }
    }
    ~OpenFilesLimit() {
        if (restore_) {
            ::setrlimit(RLIMIT_NOFILE, &saved_);
        }
    }
    OpenFilesLimit(const OpenFilesLimit&) = delete;
    OpenFilesLimit& operator=(const OpenFilesLimit&) = delete;

  private:
    rlimit saved_{};
    bool restore_ = false;
};

} // namespace

MigrationReport migrate_instance(const Config& config, std::string_view name, bool dry_run,
                                 SetIdBits setid, const MigrationLineSink& on_change,
                                 std::size_t stop_after) {
    validate_instance_name(name);
    const OpenFilesLimit open_files;
    const HostLayout layout(config);
    const InstanceDir instance(layout, name);
    const InstanceLock lock(config, name);

    const auto lowerdirs = parse_lowerdirs(instance.read_env(), config.lowerdirs_key,
                                           instance.path_of("instance.env"));
    const auto lowers = open_lower_layers(layout, lowerdirs, name);
    const UniqueFd upper = instance.open_subdir("upper", O_RDONLY);
    const std::string upper_path = instance.path_of("upper");
    require_same_mount(instance.fd(), instance.path(), upper.get(), upper_path, name);
    {
        const UniqueFd merged = instance.open_subdir("merged", O_PATH);
        if (auto id = mount_root_id(merged.get())) {
            throw Error(ErrorCode::AlreadyMounted,
                        instance_context(instance.name()) + printable(instance.path_of("merged")) +
                            " is a mount point: unmount the instance before migrating it");
        }
    }
    const Refuser r(name, upper_path);
    const MountIdentity upper_mount = mount_identity(upper.get(), upper_path);
    struct stat upper_st {};
    if (::fstat(upper.get(), &upper_st) != 0) {
        r.fail_errno("stat", "", errno);
    }
    const UpperOwner owner = UpperOwner::of(upper_st);

    auto marker = get_xattr(upper.get(), true, std::string(kMigrationMarkerXattr).c_str());
    if (marker && *marker == kMarkerVerifyFailed) {
        throw Error(ErrorCode::UpperdirTainted,
                    instance_context(instance.name()) + "an earlier migration of " +
                        printable(upper_path) +
                        " failed verification and the instance stays refused; inspect the upper, "
                        "then remove the xattr " +
                        std::string(kMigrationMarkerXattr) + " from it to run migrate again");
    }

    auto layer_dirs = [&] {
        std::vector<LayerDir> out;
        for (std::size_t i = 0; i < lowers.size(); ++i) {
            UniqueFd fd(::openat(lowers[i].get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!fd) {
                throw_errno(ErrorCode::Failed,
                            instance_context(instance.name()) + "open lowerdir " +
                                printable(lowerdirs[i]),
                            errno);
            }
            out.push_back({i + 1, std::move(fd)});
        }
        return out;
    };
    auto upper_dir = [&] {
        UniqueFd fd(::openat(upper.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!fd) {
            r.fail_errno("open", "", errno);
        }
        return fd;
    };

    MigrationReport report;
    report.dry_run = dry_run;

    // What fuse-overlayfs showed, taken before anything changes.
    View expected;
    if (!dry_run) {
        std::vector<LayerDir> stack;
        stack.push_back({0, upper_dir()});
        for (auto& l : layer_dirs()) {
            stack.push_back(std::move(l));
        }
        expected = fuse_view(std::move(stack), r, upper_mount, owner, setid);
        // From the first change until verification passed, the taint scan
        // refuses the instance.
        set_marker(upper.get(), kMarkerInProgress, r);
    }

    const std::vector<std::string> foreign =
        convert_upper(upper.get(), layer_dirs(), dry_run, stop_after, report, r, instance,
                      upper_mount, owner, setid, on_change);
    if (dry_run) {
        return report;
    }

    {
        std::vector<int> fds{upper.get()};
        for (const auto& l : lowers) {
            fds.push_back(l.get());
        }
        std::vector<std::string> layer_names{upper_path};
        layer_names.insert(layer_names.end(), lowerdirs.begin(), lowerdirs.end());
        verify_conversion(expected, fds, layer_names, config, r, instance.name());
    }
    report.verified_entries = expected.size();
    if (::fremovexattr(upper.get(), std::string(kMigrationMarkerXattr).c_str()) != 0 &&
        errno != ENODATA) {
        r.fail_errno("unmark", "", errno);
    }
    if (!foreign.empty()) {
        const std::string shown = first_few(foreign, ", ", " and ");
        throw Error(ErrorCode::UpperdirTainted,
                    r.prefix() + "converted and verified, but " +
                        count(foreign.size(), "entry", "entries") +
                        " not owned by the upper's owner " +
                        (foreign.size() == 1 ? "was" : "were") +
                        " left alone with its fuse-overlayfs xattrs, so the instance stays "
                        "refused: " +
                        shown +
                        "; inspect them (a hard link to a file elsewhere?), remove them or "
                        "their user.fuseoverlayfs.* xattrs, and run migrate again");
    }
    // The proof the mount path will ask for.
    check_upper_untainted(upper.get(), upper_path, name);
    return report;
}

} // namespace overlay
