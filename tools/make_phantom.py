from boneage_d2.tools.make_phantom import cli

if __name__ == "__main__":
    cli()
