from boneage_d2.tools.convert_rsna import cli

if __name__ == "__main__":
    cli()
