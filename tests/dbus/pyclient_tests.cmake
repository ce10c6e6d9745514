# The Python client (clients/python) in the dbus tier
# (test_python_client.py), included from tests/dbus/CMakeLists.txt so it
# shares l4mt_add_test and its fixture. Needs python3-jeepney.
if(TARGET left4me-overlayd AND TARGET left4me-overlay)
  l4mt_add_test(pyclient DAEMON TIMEOUT 240
                CLASSES test_python_client.PyClientMemberTest test_python_client.PyClientSignalTest
                        test_python_client.PyClientAuthorizationTest
                        test_python_client.PyClientFakeServiceTest)
endif()
# No bus needed: the error table, the signatures, the base class.
add_test(NAME pyclient.offline
         COMMAND ${L4MT_PYTHON} -m unittest -v test_python_client.OfflineTest
         WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
# The module imports the fixture's constants (tests/fixture).
set_tests_properties(pyclient.offline PROPERTIES LABELS unit TIMEOUT 60
                     ENVIRONMENT PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/fixture)
