"""Which chapter introduces each test group: the suite's central table.

A key is a test file (the group) or `file::test` (one test that a later
chapter changes). A value is the first chapter that must pass it, or
(first, last) for behaviour that a later chapter takes away, such as the
chroot escape that namespaces close. `None` marks a test of the tooling
itself, which runs once rather than per implementation.

A test that no entry covers is a collection error: every promise names the
chapter that makes it.
"""

FINAL = 99

TABLE: dict[str, int | tuple[int, int] | None] = {
    # Tooling
    "test_generator.py": None,
    "test_imports.py": None,
    "test_suite.py": None,
    "test_workshop.py": None,
    "test_lessons.py": None,
    "test_setup.py": None,
    # Chapter 01: chroot
    "test_run.py": 1,
    "test_escape.py": 1,
    "test_explain.py": 1,
    "test_explain.py::test_explain_shows_the_cgroup_files_written_for_a_memory_limit": 3,
    "test_explain.py::test_explain_shows_the_overlay_mount_of_a_containers_layers": 4,
    "test_explain.py::test_explain_shows_each_blob_written_and_each_layer_unpacked": 5,
    "test_explain.py::test_explain_shows_each_http_exchange_with_a_registry": 6,
    "test_explain.py::test_explain_shows_each_build_cache_lookup_and_its_answer": 7,
    "test_explain.py::test_explain_shows_the_network_and_the_security_steps_of_final": FINAL,
    "test_exercises.py::test_a_bare_e_key_passes_the_engines_value_and_an_empty_key_is_refused": 1,
    "test_exercises.py::test_path_is_searched_in_order_past_a_directory_named_like_the_command": 1,
    "test_exercises.py::test_an_empty_path_entry_means_the_working_directory": 1,
    "test_escape.py::test_a_chroot_container_reads_host_files_through_another_process_root": (1, 1),
    "test_escape.py::test_a_chroot_container_escapes_with_the_chroot_chdir_trick": (1, 1),
    "test_escape.py::test_a_container_cannot_read_host_files_through_another_process_root": 2,
    "test_escape.py::test_a_container_cannot_escape_with_the_chroot_chdir_trick": 2,
    "test_run.py::test_running_as_an_ordinary_user_without_root_is_refused_with_a_hint": (1, 1),
    "test_run.py::test_a_signal_that_comes_while_the_engine_is_between_waits_still_reaches_the_container": FINAL,
    "test_namespaces.py::test_init_forwards_a_signal_that_comes_before_it_is_ready_for_it": FINAL,
    # Beyond the chapters: final/ only
    "test_terminal.py": FINAL,
    "test_oci_runtime.py": FINAL,
    "test_containerd.py": FINAL,
    "test_crashes.py": FINAL,
    "test_exec.py": FINAL,
    "test_lifecycle.py": FINAL,
    "test_attach.py": FINAL,
    "test_pause_top.py": FINAL,
    "test_events.py": FINAL,
    "test_ps.py": FINAL,
    "test_format.py": FINAL,
    "test_rename.py": FINAL,
    "test_system.py": FINAL,
    "test_run_options.py": FINAL,
    "test_security.py": FINAL,
    "test_seccomp_filter.py": FINAL,
    "test_image_pull.py": FINAL,
    "test_network.py": FINAL,
    "test_cp.py": FINAL,
    # Chapter 02: namespaces
    "test_namespaces.py": 2,
    # final/ puts containers on a bridge by default (test_network.py checks --network none has only lo)
    "test_namespaces.py::test_only_lo_exists_in_the_network_namespace_and_it_is_up": (2, 7),
    # final's default profile takes CAP_SYS_ADMIN away: test_security.py changes the hostname with --cap-add
    "test_namespaces.py::test_hostname_names_the_container_and_the_hosts_hostname_stays_unchanged": (2, 7),
    "test_namespaces.py::test_a_mount_made_inside_is_invisible_on_the_host_before_during_and_after": (2, 7),
    "test_rootless.py::test_a_rootless_container_cannot_change_the_hosts_hostname": (2, 7),
    "test_rootless.py": 2,
    # Chapter 03: cgroups
    "test_cgroups.py": 3,
    "test_exercises.py::test_memory_sizes_in_dockers_units_reach_the_kernel_in_bytes": 3,
    # Chapter 04: union layers
    "test_layers.py": 4,
    "test_containers.py": 4,
    "test_containers.py::test_start_without_a_is_refused_with_a_hint": (4, 7),  # final starts it detached
    "test_containers.py::test_inspect_shows_a_containers_state_and_config_as_docker_does": 5,
    "test_volumes.py": 4,
    # Chapter 05: images
    "test_images.py": 5,
    "test_image_interop.py": 5,
    "test_tar_safety.py": 5,
    "test_image_run.py": 5,
    # Chapter 06: registry
    "test_registry_server.py": 6,
    "test_registry_client.py": 6,
    # Chapter 07: Dockerfile
    "test_dockerfile_parser.py": 7,
    "test_dockerfile_expand.py": 7,
    "test_build.py": 7,
}


def chapters_for(nodeid: str) -> range | None | str:
    """The chapters a test runs in; None for tooling tests; 'missing' if uncovered."""
    path, _, rest = nodeid.partition("::")
    file = path.rsplit("/", 1)[-1]
    name = rest.split("[", 1)[0]
    for key in (f"{file}::{name}", file):
        if key in TABLE:
            value = TABLE[key]
            if value is None:
                return None
            first, last = value if isinstance(value, tuple) else (value, FINAL)
            return range(first, last + 1)
    return "missing"
