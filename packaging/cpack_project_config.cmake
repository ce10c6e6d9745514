# Read by cpack for each generator, after CPackConfig.cmake.

# The package installs into /usr; binaries built for another prefix would
# look for their helper in the wrong place.
if(CPACK_GENERATOR STREQUAL "DEB" AND NOT CPACK_L4M_INSTALL_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR "the Debian package needs a build configured with "
                      "-DCMAKE_INSTALL_PREFIX=/usr (this one: ${CPACK_L4M_INSTALL_PREFIX})")
endif()

# L4M_DEB_VERSION=... cpack: the same build packaged under another version,
# for the system test's upgrade check.
if(DEFINED ENV{L4M_DEB_VERSION} AND NOT "$ENV{L4M_DEB_VERSION}" STREQUAL "")
  set(CPACK_PACKAGE_VERSION "$ENV{L4M_DEB_VERSION}")
  set(CPACK_DEBIAN_PACKAGE_VERSION "$ENV{L4M_DEB_VERSION}")
endif()
