# cmake -DUNIT=... -DACTIVATION=... -DDAEMON=... -P check_paths.cmake
# The unit's ExecStart and the activation file's Exec= both start DAEMON,
# and the activation file names the unit by its file name.
file(READ ${UNIT} unit)
file(READ ${ACTIVATION} activation)
get_filename_component(unit_name ${UNIT} NAME)
if(NOT unit MATCHES "\nExecStart=${DAEMON}[ \n]")
  message(FATAL_ERROR "${UNIT}: ExecStart does not start ${DAEMON}")
endif()
if(NOT activation MATCHES "\nExec=${DAEMON}[ \n]")
  message(FATAL_ERROR "${ACTIVATION}: Exec= does not start ${DAEMON}")
endif()
if(NOT activation MATCHES "\nSystemdService=${unit_name}\n")
  message(FATAL_ERROR "${ACTIVATION}: SystemdService= is not ${unit_name}")
endif()
if(NOT activation MATCHES "\nName=org\\.left4me\\.Overlay1\n" OR
   NOT unit MATCHES "\nBusName=org\\.left4me\\.Overlay1\n")
  message(FATAL_ERROR "the bus name differs between ${UNIT} and ${ACTIVATION}")
endif()
