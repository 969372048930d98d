from deepinsight.serve.cli import main

main()
