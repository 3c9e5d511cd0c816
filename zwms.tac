# Run the same service as `twistd zwms`:  twistd -ny zwms.tac
# The home is $ZWMS_HOME or the current directory; listeners are the defaults
# of SPEC §0 (use `twistd zwms` for options).
import os

from twisted.application import service

from zwms.tap import Options, makeService

options = Options()
options.parseOptions(["--home", os.environ.get("ZWMS_HOME", os.getcwd())])
application = service.Application("zwms")
makeService(options).setServiceParent(application)
