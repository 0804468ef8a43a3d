"""prcy"""
