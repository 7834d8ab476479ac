"""The `/video` command group, shared by the generate, remix and jobs extensions."""

from __future__ import annotations

from discord import app_commands

GROUP_NAME = "video"


def video_group(tree: app_commands.CommandTree) -> app_commands.Group:
    """The tree's `/video` group, created on first use."""
    group = tree.get_command(GROUP_NAME)
    if isinstance(group, app_commands.Group):
        return group
    group = app_commands.Group(name=GROUP_NAME, description="Make AI videos with sound", guild_only=True)
    tree.add_command(group)
    return group


def add_to_video_group(tree: app_commands.CommandTree, command: app_commands.Command) -> None:
    video_group(tree).add_command(command, override=True)


def remove_from_video_group(tree: app_commands.CommandTree, name: str) -> None:
    group = video_group(tree)
    group.remove_command(name)
    if not group.commands:
        tree.remove_command(GROUP_NAME)
