//===- PipelineTest.cpp - textual pipeline helpers ------------------------===//

#include "codegen/Pipeline.h"

#include <gtest/gtest.h>

using namespace loom;

TEST(Pipeline, WithoutPassesAtEveryLevel) {
  EXPECT_EQ(withoutPasses("a,func.func(b,c{x=1 y=2}),d", {"c"}),
            "a,func.func(b),d");
  EXPECT_EQ(withoutPasses("a,func.func(b,c{x=1 y=2}),d", {"a", "d"}),
            "func.func(b,c{x=1 y=2})");
  EXPECT_EQ(withoutPasses("a,func.func(b),c", {"func.func"}), "a,c");
  EXPECT_EQ(withoutPasses("a{p=q,r},b", {"b"}), "a{p=q,r}");
  EXPECT_EQ(withoutPasses("a,b", {}), "a,b");
  EXPECT_EQ(withoutPasses("a,b", {"ab"}), "a,b");
}

TEST(Pipeline, DisabledPassesLeaveThePhasePipelines) {
  TargetOptions target;
  std::string all = loomToLinalgPipeline(target);
  ASSERT_NE(all.find("loom-pack-weights"), std::string::npos);
  ASSERT_NE(all.find("loom-fuse-gate-matmuls"), std::string::npos);
  target.disabledPasses = {"loom-pack-weights", "loom-fuse-gate-matmuls"};
  std::string some = loomToLinalgPipeline(target);
  EXPECT_EQ(some.find("loom-pack-weights"), std::string::npos);
  EXPECT_EQ(some.find("loom-fuse-gate-matmuls"), std::string::npos);
  EXPECT_NE(some.find("loom-hoist-input-projection"), std::string::npos);
  EXPECT_NE(some.find("loom-collapse-contraction-dims"), std::string::npos);
}
