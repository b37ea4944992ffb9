from agentlab.cli import main

main()
