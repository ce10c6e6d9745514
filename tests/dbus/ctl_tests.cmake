# left4me-overlayctl in the dbus tier (test_ctl.py), included from
# tests/dbus/CMakeLists.txt so it shares l4mt_add_test and its fixture.
if(TARGET left4me-overlayctl AND TARGET left4me-overlayd AND TARGET left4me-overlay)
  l4mt_add_test(ctl DAEMON TIMEOUT 180
                CLASSES test_ctl.CtlMemberTest test_ctl.CtlAuthorizationTest test_ctl.CtlAgentTest)
  set_tests_properties(dbus.ctl PROPERTIES
                       ENVIRONMENT L4MT_CTL=$<TARGET_FILE:left4me-overlayctl>)
endif()
