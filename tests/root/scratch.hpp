// Helpers shared by the root-tier tests: a scratch tmpfs, sample layouts,
// and reading the mount table.
#pragma once

#include "config.hpp"
#include "mountinfo.hpp"

#include <string>
#include <vector>

namespace l4m_test {

// Mounts a tmpfs on a fresh directory (in the test's private namespace).
void init_scratch();
const std::string& scratch();

void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);
void make_dirs(const std::string& path);

// A sample host layout under a fresh directory of the scratch area:
// ROOT/installation/base (a.txt, b.txt), ROOT/overlays/mod (a.txt), and
// instance `name` with instance.env naming mod over base. LockDir is a
// directory of the layout's own (not yet created: the core makes it).
struct Layout {
    std::string root;
    std::string outside;  // a directory beside ROOT, outside every allowed root
    std::string lock_dir; // LockDir: the test's own, as tests run in parallel
    overlay::Config config;

    std::string instance_dir(const std::string& name) const;
    std::string merged(const std::string& name) const { return instance_dir(name) + "/merged"; }
    void add_instance(const std::string& name, const std::string& lowerdirs) const;
    void set_env(const std::string& name, const std::string& content) const;
};
Layout make_layout(overlay::MountApi api = overlay::MountApi::Auto);

// Overlay mounts in this namespace's table whose mount point is at or
// under `prefix` ("" = all overlays), leaving out those that were already
// mounted when the test process started.
std::vector<overlay::MountEntry> overlays_under(const std::string& prefix);
int overlays_at(const std::string& path);

// Runs argv, returns exit status; stderr is captured into *err when given.
int run_command(const std::vector<std::string>& argv, std::string* err = nullptr);

} // namespace l4m_test
