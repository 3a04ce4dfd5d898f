from ocpp_audit.cli import main

main()
