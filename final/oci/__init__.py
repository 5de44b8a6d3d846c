# chapter: final
"""Beyond the book: Dockyard's runtime behind runc's command line.

containerd (and so Kubernetes, through the CRI) never starts a container
itself. It unpacks the image into a *bundle*, a directory holding `rootfs/`
and a `config.json` written in the OCI runtime spec's format, and then calls
an OCI runtime, a program with runc's command line, once per step:

    create --bundle DIR ID     build the container; its process waits
    start ID                   let the process exec the user's command
    state ID                   print the spec's state JSON
    kill ID SIGNAL             signal it
    delete ID                  remove what create made

This package is that command line. It reads config.json into the same
engine-free description that `python3 -m final run` builds from its flags
(final/spec.py) and hands it to the same runtime: there is one runtime, and
two ways of describing a container to it.

Try it:  sudo python3 -m final.oci spec > config.json   (in a bundle directory)
         sudo python3 -m final.oci run --bundle DIR demo
"""
