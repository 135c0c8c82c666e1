"""The one command line behind every make target (`python -m ops COMMAND`): the local stacks (devstack) and the deploy
path (deployer) are libraries it calls; neither imports it, and devstack never imports deployer."""
